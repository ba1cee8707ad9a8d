// config.json of a Hugging Face checkpoint. Only the keys the forward passes read are taken; options that would
// change the computation in a way attnviz does not implement are refused rather than ignored.
#include "config.h"

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

static av_status optional_epsilon(const cJSON *root, const char *key, const char *path, float fallback, float *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = fallback;
    if (!item) return AV_SUCCESS;
    if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) || !isfinite((float)item->valuedouble)) {
        char value[64];
        describe_value(item, value, sizeof value);
        return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be a positive number, got %s", path, key, value);
    }
    *out = (float)item->valuedouble;
    return AV_SUCCESS;
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
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) return AV_SUCCESS;
    if (!cJSON_IsBool(item)) return av_fail(AV_ERROR_FORMAT, "%s: key '%s' must be true or false", path, key);
    if (cJSON_IsTrue(item) == refused_value)
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
    AV_TRY(optional_epsilon(root, "layer_norm_epsilon", path, 1e-5f, &cfg->layer_norm_eps));
    const char *act;
    AV_TRY(optional_string(root, "activation_function", path, "gelu_new", &act));
    AV_TRY(parse_activation(act, "activation_function", path, &cfg->activation));
    AV_TRY(refuse_bool(root, "scale_attn_by_inverse_layer_idx", path, true));
    AV_TRY(refuse_bool(root, "scale_attn_weights", path, false));
    cfg->type_vocab_size = 0;
    return AV_SUCCESS;
}

static av_status parse_bert(model_config *cfg, const cJSON *root, const char *path) {
    cfg->arch = AV_ARCH_BERT;
    AV_TRY(require_positive_int(root, "hidden_size", path, &cfg->n_embd));
    AV_TRY(require_positive_int(root, "num_attention_heads", path, &cfg->n_head));
    AV_TRY(require_positive_int(root, "num_hidden_layers", path, &cfg->n_layer));
    AV_TRY(require_positive_int(root, "max_position_embeddings", path, &cfg->n_positions));
    AV_TRY(require_positive_int(root, "intermediate_size", path, &cfg->n_inner));
    AV_TRY(require_positive_int(root, "vocab_size", path, &cfg->vocab_size));
    AV_TRY(check_heads_divide(cfg, path, "hidden_size", "num_attention_heads"));
    AV_TRY(optional_positive_int(root, "type_vocab_size", path, 2, &cfg->type_vocab_size));
    AV_TRY(optional_epsilon(root, "layer_norm_eps", path, 1e-12f, &cfg->layer_norm_eps));
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

static av_status parse_root(model_config *cfg, const cJSON *root, const char *path) {
    if (!cJSON_IsObject(root)) return av_fail(AV_ERROR_FORMAT, "%s: top level is not a JSON object", path);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!type) return av_fail(AV_ERROR_FORMAT, "%s: missing key 'model_type'", path);
    if (!cJSON_IsString(type)) return av_fail(AV_ERROR_FORMAT, "%s: key 'model_type' must be a string", path);
    if (strcmp(type->valuestring, "gpt2") == 0)
        AV_TRY(parse_gpt2(cfg, root, path));
    else if (strcmp(type->valuestring, "bert") == 0)
        AV_TRY(parse_bert(cfg, root, path));
    else
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: model_type '%s' is not supported (supported: gpt2, bert)", path,
                       type->valuestring);
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

bool config_is_causal(const model_config *cfg) { return cfg->arch == AV_ARCH_GPT2; }
