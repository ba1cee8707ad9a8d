// config.json parsing: GPT-2, BERT and Llama-family configs as Hugging Face writes them, defaults, and every refusal (one test
// each) with its status and the facts its message must name.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "support.h"

#define CONFIG_PATH "ckpt/config.json"

static void expect_error_impl(av_status status, av_status want, const char *const *fragments) {
    cr_assert_eq(status, want, "status %s, expected %s; message: %s", av_status_string(status),
                 av_status_string(want), av_last_error());
    for (int i = 0; fragments[i]; i++)
        cr_assert(strstr(av_last_error(), fragments[i]), "message \"%s\" lacks \"%s\"", av_last_error(),
                  fragments[i]);
}
// Parses JSON (as if from ckpt/config.json) and expects WANT with a message naming the file and every fragment.
#define expect_parse_error(json, want, ...)                                                                     \
    do {                                                                                                        \
        model_config cfg_;                                                                                      \
        expect_error_impl(config_parse(&cfg_, json, CONFIG_PATH), want,                                        \
                          (const char *const[]){CONFIG_PATH, __VA_ARGS__, NULL});                               \
    } while (0)

// The keys of transformers' GPT2Config.to_json_string() for gpt2 (trimmed of task-specific ones).
static const char *GPT2_CONFIG =
    "{\n"
    "  \"activation_function\": \"gelu_new\",\n"
    "  \"architectures\": [\"GPT2LMHeadModel\"],\n"
    "  \"attn_pdrop\": 0.1,\n"
    "  \"bos_token_id\": 50256,\n"
    "  \"embd_pdrop\": 0.1,\n"
    "  \"eos_token_id\": 50256,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"layer_norm_epsilon\": 1e-05,\n"
    "  \"model_type\": \"gpt2\",\n"
    "  \"n_ctx\": 1024,\n"
    "  \"n_embd\": 768,\n"
    "  \"n_head\": 12,\n"
    "  \"n_inner\": null,\n"
    "  \"n_layer\": 12,\n"
    "  \"n_positions\": 1024,\n"
    "  \"reorder_and_upcast_attn\": false,\n"
    "  \"resid_pdrop\": 0.1,\n"
    "  \"scale_attn_by_inverse_layer_idx\": false,\n"
    "  \"scale_attn_weights\": true,\n"
    "  \"vocab_size\": 50257\n"
    "}\n";

static const char *BERT_CONFIG = "{\n"
                                 "  \"architectures\": [\"BertForMaskedLM\"],\n"
                                 "  \"attention_probs_dropout_prob\": 0.1,\n"
                                 "  \"hidden_act\": \"gelu\",\n"
                                 "  \"hidden_dropout_prob\": 0.1,\n"
                                 "  \"hidden_size\": 128,\n"
                                 "  \"intermediate_size\": 512,\n"
                                 "  \"layer_norm_eps\": 1e-12,\n"
                                 "  \"max_position_embeddings\": 512,\n"
                                 "  \"model_type\": \"bert\",\n"
                                 "  \"num_attention_heads\": 2,\n"
                                 "  \"num_hidden_layers\": 2,\n"
                                 "  \"pad_token_id\": 0,\n"
                                 "  \"position_embedding_type\": \"absolute\",\n"
                                 "  \"type_vocab_size\": 2,\n"
                                 "  \"vocab_size\": 30522\n"
                                 "}\n";

Test(config, gpt2_parses) {
    model_config cfg;
    cr_assert_eq(config_parse(&cfg, GPT2_CONFIG, CONFIG_PATH), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.arch, AV_ARCH_GPT2);
    cr_assert_str_eq(cfg.model_type, "gpt2");
    cr_assert_eq(cfg.n_embd, 768);
    cr_assert_eq(cfg.n_head, 12);
    cr_assert_eq(cfg.n_layer, 12);
    cr_assert_eq(cfg.n_positions, 1024);
    cr_assert_eq(cfg.n_inner, 4 * 768, "n_inner null means 4 * n_embd");
    cr_assert_eq(cfg.vocab_size, 50257);
    cr_assert_eq(cfg.type_vocab_size, 0);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-5f, 1e-12f);
    cr_assert_eq(cfg.activation, AV_ACT_GELU_TANH);
}

Test(config, gpt2_defaults_and_explicit_options) {
    model_config cfg;
    const char *minimal = "{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                          "\"vocab_size\":100}";
    cr_assert_eq(config_parse(&cfg, minimal, CONFIG_PATH), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.n_inner, 256);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-5f, 1e-12f);
    cr_assert_eq(cfg.activation, AV_ACT_GELU_TANH, "GPT2Config's default activation is gelu_new");

    const char *custom = "{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                         "\"vocab_size\":100,\"n_inner\":100,\"layer_norm_epsilon\":1e-6,"
                         "\"activation_function\":\"relu\"}";
    cr_assert_eq(config_parse(&cfg, custom, CONFIG_PATH), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.n_inner, 100);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-6f, 1e-13f);
    cr_assert_eq(cfg.activation, AV_ACT_RELU);
}

Test(config, activation_names_map_to_the_right_function) {
    static const struct {
        const char *name;
        av_activation act;
    } cases[] = {{"gelu_new", AV_ACT_GELU_TANH},
                 {"gelu_pytorch_tanh", AV_ACT_GELU_TANH},
                 {"gelu_fast", AV_ACT_GELU_TANH},
                 {"gelu", AV_ACT_GELU_ERF},
                 {"relu", AV_ACT_RELU}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"model_type\":\"bert\",\"hidden_size\":8,\"num_attention_heads\":2,\"num_hidden_layers\":1,"
                 "\"max_position_embeddings\":16,\"intermediate_size\":32,\"vocab_size\":10,\"hidden_act\":\"%s\"}",
                 cases[i].name);
        model_config cfg;
        cr_assert_eq(config_parse(&cfg, json, CONFIG_PATH), AV_SUCCESS, "%s: %s", cases[i].name, av_last_error());
        cr_assert_eq(cfg.activation, cases[i].act, "%s", cases[i].name);
    }
}

Test(config, bert_parses) {
    model_config cfg;
    cr_assert_eq(config_parse(&cfg, BERT_CONFIG, CONFIG_PATH), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.arch, AV_ARCH_BERT);
    cr_assert_str_eq(cfg.model_type, "bert");
    cr_assert_eq(cfg.n_embd, 128);
    cr_assert_eq(cfg.n_head, 2);
    cr_assert_eq(cfg.n_layer, 2);
    cr_assert_eq(cfg.n_positions, 512);
    cr_assert_eq(cfg.n_inner, 512);
    cr_assert_eq(cfg.vocab_size, 30522);
    cr_assert_eq(cfg.type_vocab_size, 2);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-12f, 1e-18f);
    cr_assert_eq(cfg.activation, AV_ACT_GELU_ERF);
}

Test(config, bert_defaults) {
    model_config cfg;
    const char *minimal = "{\"model_type\":\"bert\",\"hidden_size\":8,\"num_attention_heads\":2,"
                          "\"num_hidden_layers\":1,\"max_position_embeddings\":16,\"intermediate_size\":32,"
                          "\"vocab_size\":10}";
    cr_assert_eq(config_parse(&cfg, minimal, CONFIG_PATH), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.type_vocab_size, 2);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-12f, 1e-18f);
    cr_assert_eq(cfg.activation, AV_ACT_GELU_ERF);
}

Test(config, load_reads_the_file) {
    char *dir = make_scratch_dir("config");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, BERT_CONFIG, strlen(BERT_CONFIG));
    model_config cfg;
    cr_assert_eq(config_load(&cfg, path), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(cfg.arch, AV_ARCH_BERT);
    cr_assert_eq(cfg.n_embd, 128);
    remove_tree(dir);
    free(dir);
}

Test(config, load_missing_file) {
    model_config cfg;
    expect_error_impl(config_load(&cfg, "/nonexistent/config.json"), AV_ERROR_IO,
                      (const char *const[]){"/nonexistent/config.json", NULL});
}

Test(config, malformed_json) {
    expect_parse_error("{\"model_type\": \"gpt2\",\n \"n_embd\": }", AV_ERROR_FORMAT, "malformed JSON", "(line 2)");
}

// A boolean option holding anything but true, false or null is refused, not read as false.
Test(config, boolean_option_of_another_type) {
    expect_parse_error("{\"model_type\":\"llama\",\"hidden_size\":64,\"num_attention_heads\":4,"
                       "\"num_hidden_layers\":2,\"max_position_embeddings\":128,\"intermediate_size\":96,"
                       "\"vocab_size\":300,\"tie_word_embeddings\":\"yes\"}",
                       AV_ERROR_FORMAT, "tie_word_embeddings is not true, false or null");
}

Test(config, top_level_not_an_object) {
    expect_parse_error("[\"gpt2\"]", AV_ERROR_FORMAT, "not a JSON object");
}

Test(config, unknown_model_type) {
    expect_parse_error("{\"model_type\":\"mistral\",\"hidden_size\":4096}", AV_ERROR_UNSUPPORTED,
                       "model_type 'mistral' is not supported (supported: gpt2, bert, llama, qwen2)");
}

Test(config, roberta_is_not_bert) {
    expect_parse_error("{\"model_type\":\"roberta\"}", AV_ERROR_UNSUPPORTED, "model_type 'roberta'");
}

Test(config, missing_model_type) {
    expect_parse_error("{\"n_embd\":64}", AV_ERROR_FORMAT, "missing key 'model_type'");
}

Test(config, missing_key) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_positions\":32,\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "missing key 'n_layer'");
}

Test(config, bert_missing_key) {
    expect_parse_error("{\"model_type\":\"bert\",\"hidden_size\":8,\"num_attention_heads\":2,\"num_hidden_layers\":1,"
                       "\"max_position_embeddings\":16,\"vocab_size\":10}",
                       AV_ERROR_FORMAT, "missing key 'intermediate_size'");
}

Test(config, negative_value) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":-2,\"n_positions\":32,"
                       "\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "'n_layer' must be a positive integer, got -2");
}

Test(config, zero_value) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":0,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "'n_head' must be a positive integer, got 0");
}

Test(config, fractional_value) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64.5,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "'n_embd' must be a positive integer, got 64.5");
}

Test(config, string_value) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":\"64\",\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "'n_embd' must be a positive integer, got \"64\"");
}

Test(config, value_beyond_int) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":1e12}",
                       AV_ERROR_FORMAT, "'vocab_size' must be a positive integer");
}

Test(config, n_inner_zero) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100,\"n_inner\":0}",
                       AV_ERROR_FORMAT, "'n_inner' must be a positive integer, got 0");
}

Test(config, bad_layer_norm_epsilon) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100,\"layer_norm_epsilon\":-1}",
                       AV_ERROR_FORMAT, "'layer_norm_epsilon' must be a positive number, got -1");
}

Test(config, n_embd_not_divisible_by_n_head) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":100,\"n_head\":3,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100}",
                       AV_ERROR_FORMAT, "n_embd 100 is not divisible by n_head 3");
}

Test(config, bert_hidden_size_not_divisible) {
    expect_parse_error("{\"model_type\":\"bert\",\"hidden_size\":10,\"num_attention_heads\":4,\"num_hidden_layers\":1,"
                       "\"max_position_embeddings\":16,\"intermediate_size\":32,\"vocab_size\":10}",
                       AV_ERROR_FORMAT, "hidden_size 10 is not divisible by num_attention_heads 4");
}

Test(config, unknown_hidden_act) {
    expect_parse_error("{\"model_type\":\"bert\",\"hidden_size\":8,\"num_attention_heads\":2,\"num_hidden_layers\":1,"
                       "\"max_position_embeddings\":16,\"intermediate_size\":32,\"vocab_size\":10,"
                       "\"hidden_act\":\"swish\"}",
                       AV_ERROR_UNSUPPORTED, "hidden_act 'swish' is not supported");
}

Test(config, unknown_gpt2_activation) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100,\"activation_function\":\"quick_gelu\"}",
                       AV_ERROR_UNSUPPORTED, "activation_function 'quick_gelu' is not supported");
}

Test(config, relative_position_embeddings) {
    expect_parse_error("{\"model_type\":\"bert\",\"hidden_size\":8,\"num_attention_heads\":2,\"num_hidden_layers\":1,"
                       "\"max_position_embeddings\":16,\"intermediate_size\":32,\"vocab_size\":10,"
                       "\"position_embedding_type\":\"relative_key\"}",
                       AV_ERROR_UNSUPPORTED, "position_embedding_type 'relative_key'");
}

Test(config, scale_attn_by_inverse_layer_idx_refused) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100,\"scale_attn_by_inverse_layer_idx\":true}",
                       AV_ERROR_UNSUPPORTED, "scale_attn_by_inverse_layer_idx = true");
}

Test(config, unscaled_attention_refused) {
    expect_parse_error("{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_head\":4,\"n_layer\":2,\"n_positions\":32,"
                       "\"vocab_size\":100,\"scale_attn_weights\":false}",
                       AV_ERROR_UNSUPPORTED, "scale_attn_weights = false");
}

// Llama-3.2-1B's config.json as the Hub has it (transformers 4 keys: rope_theta and rope_scaling at the top).
static const char *LLAMA32_CONFIG =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": 128001, \"head_dim\": 64, \"hidden_act\": \"silu\","
    " \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 8192,"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 16, \"num_key_value_heads\": 8, \"pretraining_tp\": 1,"
    " \"rms_norm_eps\": 1e-05, \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,"
    " \"low_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\","
    " \"use_cache\": true, \"vocab_size\": 128256}";

Test(config, llama32_hub_config) {
    model_config cfg;
    AV_OK(config_parse(&cfg, LLAMA32_CONFIG, CONFIG_PATH));
    cr_assert_eq(cfg.arch, AV_ARCH_LLAMA);
    cr_assert_eq(cfg.n_embd, 2048);
    cr_assert_eq(cfg.n_head, 32);
    cr_assert_eq(cfg.n_kv_head, 8);
    cr_assert_eq(cfg.n_layer, 16);
    cr_assert_eq(cfg.n_inner, 8192);
    cr_assert_eq(cfg.n_positions, 131072);
    cr_assert_eq(cfg.vocab_size, 128256);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-5f, 1e-12);
    cr_assert_eq(cfg.rope.type, AV_ROPE_LLAMA3);
    cr_assert_float_eq(cfg.rope.theta, 500000.0f, 1e-3);
    cr_assert_float_eq(cfg.rope.factor, 32.0f, 1e-6);
    cr_assert_eq(cfg.rope.original_max_positions, 8192);
    cr_assert(cfg.tie_word_embeddings);
    cr_assert(!cfg.qkv_bias);
    cr_assert(config_is_causal(&cfg));
    cr_assert_str_eq(config_positions_key(&cfg), "max_position_embeddings");
}

// transformers 5 writes rope_parameters (theta inside); absent keys take LlamaConfig's defaults.
Test(config, llama_transformers5_rope_parameters_and_defaults) {
    model_config cfg;
    AV_OK(config_parse(&cfg,
                       "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_attention_heads\":4,"
                       "\"num_hidden_layers\":2,\"max_position_embeddings\":128,\"intermediate_size\":96,"
                       "\"vocab_size\":300,\"rope_parameters\":{\"rope_theta\":1000.0,\"rope_type\":\"linear\","
                       "\"factor\":2.0}}",
                       CONFIG_PATH));
    cr_assert_eq(cfg.n_kv_head, 4);
    cr_assert_float_eq(cfg.layer_norm_eps, 1e-6f, 1e-12);
    cr_assert_eq(cfg.rope.type, AV_ROPE_LINEAR);
    cr_assert_float_eq(cfg.rope.theta, 1000.0f, 1e-6);
    cr_assert(!cfg.tie_word_embeddings);
    float inv_freq[8];
    config_rope_inv_freq(&cfg, inv_freq);
    cr_assert_float_eq(inv_freq[0], 0.5f, 1e-7);                  // 1 / factor
    cr_assert_float_eq(inv_freq[4], 0.5f / 31.6227766f, 1e-7);    // theta^(-8/16) / factor
    AV_OK(config_parse(&cfg,
                       "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_attention_heads\":4,"
                       "\"num_hidden_layers\":2,\"max_position_embeddings\":128,\"intermediate_size\":96,"
                       "\"vocab_size\":300}",
                       CONFIG_PATH));
    cr_assert_eq(cfg.rope.type, AV_ROPE_DEFAULT);
    cr_assert_float_eq(cfg.rope.theta, 10000.0f, 1e-3);
}

Test(config, qwen2_has_qkv_biases_by_default) {
    model_config cfg;
    AV_OK(config_parse(&cfg,
                       "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"num_attention_heads\":4,"
                       "\"num_key_value_heads\":2,\"num_hidden_layers\":2,\"max_position_embeddings\":128,"
                       "\"intermediate_size\":96,\"vocab_size\":300,\"use_sliding_window\":false,"
                       "\"rope_theta\":1000000.0,\"rope_scaling\":null}",
                       CONFIG_PATH));
    cr_assert_eq(cfg.arch, AV_ARCH_LLAMA);
    cr_assert(cfg.qkv_bias);
    cr_assert_eq(cfg.n_kv_head, 2);
}

#define LLAMA_KEYS                                                                                              \
    "\"hidden_size\":64,\"num_attention_heads\":4,\"num_hidden_layers\":2,\"max_position_embeddings\":128,"    \
    "\"intermediate_size\":96,\"vocab_size\":300"

Test(config, llama_refusals) {
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"num_key_value_heads\":3}", AV_ERROR_FORMAT,
                       "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"head_dim\":32}", AV_ERROR_UNSUPPORTED,
                       "head_dim 32 is not hidden_size / num_attention_heads (16)");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"hidden_act\":\"gelu\"}",
                       AV_ERROR_UNSUPPORTED, "hidden_act 'gelu' is not supported (only silu)");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"mlp_bias\":true}", AV_ERROR_UNSUPPORTED,
                       "mlp_bias = true");
    expect_parse_error("{\"model_type\":\"qwen2\"," LLAMA_KEYS ",\"use_sliding_window\":true}",
                       AV_ERROR_UNSUPPORTED, "use_sliding_window = true");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}",
                       AV_ERROR_UNSUPPORTED, "rope_scaling type 'yarn' is not supported");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS
                       ",\"rope_parameters\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,"
                       "\"high_freq_factor\":4}}",
                       AV_ERROR_FORMAT, "missing key 'original_max_position_embeddings'");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS
                       ",\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.5}}",
                       AV_ERROR_UNSUPPORTED, "partial_rotary_factor 0.5 is not supported");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"rope_scaling\":[1]}", AV_ERROR_FORMAT,
                       "key 'rope_scaling' must be an object");
    expect_parse_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"rope_theta\":-1}", AV_ERROR_FORMAT,
                       "key 'rope_theta' must be a positive number");
}
