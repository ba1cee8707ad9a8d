// config.json of a Hugging Face checkpoint. Only the keys the forward passes read are taken; options that would
// change the computation in a way attnviz does not implement are refused rather than ignored.
#include "config.h"

#include "json_read.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// JSON text of ITEM for messages, cut short so the message stays one readable line.
static void describe_value(const cJSON *item, char *buf, size_t size) {
    char *text = cJSON_PrintUnformatted(item);
    snprintf(buf, size, "%s", text ? text : "?");
    if (text && strlen(text) >= size && size > 4) strcpy(buf + size - 4, "...");
    free(text);
}

static av_status require_positive_int(const cJSON *root, const char *key, const char *path, int *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return av_fail(AV_ERROR_FORMAT, "%s: missing key '%s'", path, key);
    double v = cJSON_IsNumber(item) ? item->valuedouble : 0;
    if (!cJSON_IsNumber(item) || v != floor(v) || v < 1 || v > INT_MAX) {
        char value[64];
        describe_value(item, value, sizeof value);
        return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be a positive integer, got %s", path, key, value);
    }
    *out = (int)v;
    return AV_SUCCESS;
}

// Like require_positive_int, but an absent key (or JSON null) leaves *out at FALLBACK.
static av_status optional_positive_int(const cJSON *root, const char *key, const char *path, int fallback, int *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item)) return AV_SUCCESS;
    return require_positive_int(root, key, path, out);
}

static av_status require_positive_number(const cJSON *root, const char *key, const char *path, float *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return av_fail(AV_ERROR_FORMAT, "%s: missing key '%s'", path, key);
    if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) || !isfinite((float)item->valuedouble) ||
        !((float)item->valuedouble > 0)) {
        char value[64];
        describe_value(item, value, sizeof value);
        return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be a positive number, got %s", path, key, value);
    }
    *out = (float)item->valuedouble;
    return AV_SUCCESS;
}

// Like require_positive_number, but an absent key leaves *out at FALLBACK.
static av_status optional_positive_number(const cJSON *root, const char *key, const char *path, float fallback,
                                          float *out) {
    *out = fallback;
    if (!cJSON_GetObjectItemCaseSensitive(root, key)) return AV_SUCCESS;
    return require_positive_number(root, key, path, out);
}

// The string under KEY, FALLBACK when absent or null; a failure when present but not a string.
static av_status optional_string(const cJSON *root, const char *key, const char *path, const char *fallback,
                                 const char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item || cJSON_IsNull(item)) return AV_SUCCESS;
    if (!cJSON_IsString(item)) return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be a string", path, key);
    *out = item->valuestring;
    return AV_SUCCESS;
}

// gelu_new, gelu_pytorch_tanh and gelu_fast are the same tanh approximation written three ways.
static av_status parse_activation(const char *name, const char *key, const char *path, av_activation *out) {
    static const struct {
        const char *name;
        av_activation act;
    } known[] = {
        {"gelu_new", AV_ACT_GELU_TANH}, {"gelu_pytorch_tanh", AV_ACT_GELU_TANH}, {"gelu_fast", AV_ACT_GELU_TANH},
        {"gelu", AV_ACT_GELU_ERF},      {"relu", AV_ACT_RELU},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) == 0) {
            *out = known[i].act;
            return AV_SUCCESS;
        }
    }
    return av_fail(AV_ERROR_UNSUPPORTED,
                   "%s: %s '%s' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)",
                   path, key, name);
}

// A boolean option whose non-default value attnviz does not implement.
static av_status refuse_bool(const cJSON *root, const char *key, const char *path, bool refused_value) {
    bool value;
    AV_TRY(json_optional_bool(root, key, !refused_value, &value, path, NULL));
    if (value == refused_value)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s = %s is not supported", path, key,
                       refused_value ? "true" : "false");
    return AV_SUCCESS;
}

static av_status check_heads_divide(const model_config *cfg, const char *path, const char *width_key,
                                    const char *heads_key) {
    if (cfg->n_embd % cfg->n_head != 0)
        return av_fail(AV_ERROR_FORMAT, "%s: %s %d is not divisible by %s %d", path, width_key, cfg->n_embd,
                       heads_key, cfg->n_head);
    return AV_SUCCESS;
}

static av_status parse_gpt2(model_config *cfg, const cJSON *root, const char *path) {
    cfg->arch = AV_ARCH_GPT2;
    AV_TRY(require_positive_int(root, "n_embd", path, &cfg->n_embd));
    AV_TRY(require_positive_int(root, "n_head", path, &cfg->n_head));
    AV_TRY(require_positive_int(root, "n_layer", path, &cfg->n_layer));
    AV_TRY(require_positive_int(root, "n_positions", path, &cfg->n_positions));
    AV_TRY(require_positive_int(root, "vocab_size", path, &cfg->vocab_size));
    AV_TRY(check_heads_divide(cfg, path, "n_embd", "n_head"));
    if (cfg->n_embd > INT_MAX / 4)
        return av_fail(AV_ERROR_FORMAT, "%s: n_embd %d is too large", path, cfg->n_embd);
    AV_TRY(optional_positive_int(root, "n_inner", path, 4 * cfg->n_embd, &cfg->n_inner));
    AV_TRY(optional_positive_number(root, "layer_norm_epsilon", path, 1e-5f, &cfg->layer_norm_eps));
    const char *act;
    AV_TRY(optional_string(root, "activation_function", path, "gelu_new", &act));
    AV_TRY(parse_activation(act, "activation_function", path, &cfg->activation));
    AV_TRY(refuse_bool(root, "scale_attn_by_inverse_layer_idx", path, true));
    AV_TRY(refuse_bool(root, "scale_attn_weights", path, false));
    cfg->type_vocab_size = 0;
    return AV_SUCCESS;
}

// The sizes BERT and the Llama family name alike.
static av_status parse_sizes(model_config *cfg, const cJSON *root, const char *path) {
    AV_TRY(require_positive_int(root, "hidden_size", path, &cfg->n_embd));
    AV_TRY(require_positive_int(root, "num_attention_heads", path, &cfg->n_head));
    AV_TRY(require_positive_int(root, "num_hidden_layers", path, &cfg->n_layer));
    AV_TRY(require_positive_int(root, "max_position_embeddings", path, &cfg->n_positions));
    AV_TRY(require_positive_int(root, "intermediate_size", path, &cfg->n_inner));
    AV_TRY(require_positive_int(root, "vocab_size", path, &cfg->vocab_size));
    return check_heads_divide(cfg, path, "hidden_size", "num_attention_heads");
}

static av_status parse_bert(model_config *cfg, const cJSON *root, const char *path) {
    cfg->arch = AV_ARCH_BERT;
    AV_TRY(parse_sizes(cfg, root, path));
    AV_TRY(optional_positive_int(root, "type_vocab_size", path, 2, &cfg->type_vocab_size));
    AV_TRY(optional_positive_number(root, "layer_norm_eps", path, 1e-12f, &cfg->layer_norm_eps));
    const char *act;
    AV_TRY(optional_string(root, "hidden_act", path, "gelu", &act));
    AV_TRY(parse_activation(act, "hidden_act", path, &cfg->activation));
    // Relative position schemes add terms to the attention scores that the backends do not compute.
    const char *positions;
    AV_TRY(optional_string(root, "position_embedding_type", path, NULL, &positions));
    if (positions && strcmp(positions, "absolute") != 0)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: position_embedding_type '%s' is not supported (only 'absolute')",
                       path, positions);
    return AV_SUCCESS;
}

// The rope type's own keys, read from PARAMS (rope_parameters, or the older rope_scaling).
static av_status parse_rope_scaling(rope_config *rope, const cJSON *params, const char *key, const char *path) {
    const char *type;
    AV_TRY(optional_string(params, "rope_type", path, NULL, &type));
    if (!type) AV_TRY(optional_string(params, "type", path, "default", &type)); // rope_scaling's older spelling
    float partial;
    AV_TRY(optional_positive_number(params, "partial_rotary_factor", path, 1.0f, &partial));
    if (partial != 1.0f)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s.partial_rotary_factor %g is not supported (only 1)", path, key,
                       partial);
    if (strcmp(type, "default") == 0) {
        rope->type = AV_ROPE_DEFAULT;
    } else if (strcmp(type, "linear") == 0) {
        rope->type = AV_ROPE_LINEAR;
        AV_TRY(require_positive_number(params, "factor", path, &rope->factor));
    } else if (strcmp(type, "llama3") == 0) {
        rope->type = AV_ROPE_LLAMA3;
        AV_TRY(require_positive_number(params, "factor", path, &rope->factor));
        AV_TRY(require_positive_number(params, "low_freq_factor", path, &rope->low_freq_factor));
        AV_TRY(require_positive_number(params, "high_freq_factor", path, &rope->high_freq_factor));
        AV_TRY(require_positive_int(params, "original_max_position_embeddings", path, &rope->original_max_positions));
        if (rope->high_freq_factor <= rope->low_freq_factor)
            return av_fail(AV_ERROR_FORMAT, "%s: %s.high_freq_factor must be larger than low_freq_factor", path, key);
    } else {
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s type '%s' is not supported (supported: default, linear, llama3)",
                       path, key, type);
    }
    return AV_SUCCESS;
}

// transformers 5 writes one "rope_parameters" object (rope_theta inside); earlier versions and most checkpoints on
// the Hub have "rope_theta" at the top and "rope_scaling" (null for plain RoPE).
static av_status parse_rope(rope_config *rope, const cJSON *root, const char *path) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const char *key = "rope_parameters";
    const cJSON *theta_holder = params;
    if (!params || cJSON_IsNull(params)) {
        params = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        key = "rope_scaling";
        theta_holder = root;
    }
    AV_TRY(optional_positive_number(theta_holder, "rope_theta", path, 10000.0f, &rope->theta));
    if (!params || cJSON_IsNull(params)) {
        rope->type = AV_ROPE_DEFAULT;
        return AV_SUCCESS;
    }
    if (!cJSON_IsObject(params)) return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be an object", path, key);
    return parse_rope_scaling(rope, params, key, path);
}

// The Llama family: llama, and qwen2 (biases on q, k and v; an optional sliding window, refused).
static av_status parse_llama(model_config *cfg, const cJSON *root, const char *path, bool qwen2) {
    cfg->arch = AV_ARCH_LLAMA;
    AV_TRY(parse_sizes(cfg, root, path));
    AV_TRY(optional_positive_int(root, "num_key_value_heads", path, cfg->n_head, &cfg->n_kv_head));
    if (cfg->n_head % cfg->n_kv_head != 0)
        return av_fail(AV_ERROR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                       cfg->n_head, cfg->n_kv_head);
    int head_dim, HS = cfg->n_embd / cfg->n_head;
    AV_TRY(optional_positive_int(root, "head_dim", path, HS, &head_dim));
    if (head_dim != HS)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: head_dim %d is not hidden_size / num_attention_heads (%d)", path,
                       head_dim, HS);
    if (HS % 2) return av_fail(AV_ERROR_UNSUPPORTED, "%s: rotary positions need an even head size, not %d", path, HS);
    if (cfg->n_inner > INT_MAX / 2)
        return av_fail(AV_ERROR_FORMAT, "%s: intermediate_size %d is too large", path, cfg->n_inner);
    AV_TRY(optional_positive_number(root, "rms_norm_eps", path, 1e-6f, &cfg->layer_norm_eps));
    const char *act;
    AV_TRY(optional_string(root, "hidden_act", path, "silu", &act));
    if (strcmp(act, "silu") != 0)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (only silu)", path, act);
    cfg->activation = AV_ACT_SILU;
    AV_TRY(parse_rope(&cfg->rope, root, path));
    AV_TRY(json_optional_bool(root, "attention_bias", qwen2, &cfg->qkv_bias, path, NULL));
    AV_TRY(json_optional_bool(root, "tie_word_embeddings", false, &cfg->tie_word_embeddings, path, NULL));
    AV_TRY(refuse_bool(root, "mlp_bias", path, true));
    AV_TRY(refuse_bool(root, "use_sliding_window", path, true));
    return AV_SUCCESS;
}

static av_status parse_root(model_config *cfg, const cJSON *root, const char *path) {
    if (!cJSON_IsObject(root)) return av_fail(AV_ERROR_FORMAT, "%s: top level is not a JSON object", path);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!type) return av_fail(AV_ERROR_FORMAT, "%s: missing key 'model_type'", path);
    if (!cJSON_IsString(type)) return av_fail(AV_ERROR_FORMAT, "%s: key 'model_type' must be a string", path);
    if (strcmp(type->valuestring, "gpt2") == 0)
        AV_TRY(parse_gpt2(cfg, root, path));
    else if (strcmp(type->valuestring, "bert") == 0)
        AV_TRY(parse_bert(cfg, root, path));
    else if (strcmp(type->valuestring, "llama") == 0 || strcmp(type->valuestring, "qwen2") == 0)
        AV_TRY(parse_llama(cfg, root, path, strcmp(type->valuestring, "qwen2") == 0));
    else
        return av_fail(AV_ERROR_UNSUPPORTED,
                       "%s: model_type '%s' is not supported (supported: gpt2, bert, llama, qwen2)", path,
                       type->valuestring);
    if (cfg->arch != AV_ARCH_LLAMA) cfg->n_kv_head = cfg->n_head;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", type->valuestring);
    return AV_SUCCESS;
}

// 1-based line of AT in TEXT, so a hand-edited config's error can be found.
static int line_of(const char *text, const char *at) {
    int line = 1;
    for (const char *c = text; c < at && *c; c++) line += *c == '\n';
    return line;
}

av_status config_parse(model_config *cfg, const char *json, const char *path_for_messages) {
    memset(cfg, 0, sizeof *cfg);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, true);
    if (!root) {
        const char *at = end ? end : json;
        return av_fail(AV_ERROR_FORMAT, "%s: malformed JSON near byte %td (line %d)", path_for_messages, at - json,
                       line_of(json, at));
    }
    av_status status = parse_root(cfg, root, path_for_messages);
    cJSON_Delete(root);
    if (status != AV_SUCCESS) memset(cfg, 0, sizeof *cfg);
    return status;
}

av_status config_load(model_config *cfg, const char *path) {
    char *text;
    AV_TRY(av_read_file(path, &text, NULL));
    av_status status = config_parse(cfg, text, path);
    free(text);
    return status;
}

bool config_is_causal(const model_config *cfg) { return cfg->arch != AV_ARCH_BERT; }

const char *config_positions_key(const model_config *cfg) {
    return cfg->arch == AV_ARCH_GPT2 ? "n_positions" : "max_position_embeddings";
}

// Llama 3.1's scaling: long wavelengths are divided by FACTOR, short ones kept, and those between blended; in float32
// like Hugging Face's _compute_llama3_parameters.
static float llama3_inv_freq(const rope_config *rope, float inv_freq) {
    float old_context = (float)rope->original_max_positions;
    float low_freq_wavelen = old_context / rope->low_freq_factor;
    float high_freq_wavelen = old_context / rope->high_freq_factor;
    float wavelen = (float)(2 * M_PI) / inv_freq;
    if (wavelen < high_freq_wavelen) return inv_freq;
    if (wavelen > low_freq_wavelen) return inv_freq / rope->factor;
    float smooth = (old_context / wavelen - rope->low_freq_factor) / (rope->high_freq_factor - rope->low_freq_factor);
    return (1.0f - smooth) * inv_freq / rope->factor + smooth * inv_freq;
}

// inv_freq[i] = 1 / theta^(2i / HS), float32 throughout as in Hugging Face's rotary embedding.
void config_rope_inv_freq(const model_config *cfg, float *inv_freq) {
    int HS = cfg->n_embd / cfg->n_head;
    const rope_config *rope = &cfg->rope;
    for (int i = 0; i < HS / 2; i++) {
        float f = 1.0f / powf(rope->theta, (float)(2 * i) / (float)HS);
        if (rope->type == AV_ROPE_LINEAR) f /= rope->factor;
        if (rope->type == AV_ROPE_LLAMA3) f = llama3_inv_freq(rope, f);
        inv_freq[i] = f;
    }
}
