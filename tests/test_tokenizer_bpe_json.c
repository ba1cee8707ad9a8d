// Byte-level BPE from tokenizer.json files laid out as Llama 3's and Qwen2's (tests/data/tok-llama3, tok-qwen2,
// written by weights/gen_bpe_json_tokenizers.py): ids, spans and decoded text against Hugging Face tokenizers'
// (cases.jsonl), the BOS template, and the pipeline variants the loader refuses.
#include "support.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLAMA3_DIR FIXTURE("tok-llama3")
#define QWEN2_DIR FIXTURE("tok-qwen2")

static tokenizer *load_or_fail(const char *dir) {
    tokenizer *tok = NULL;
    cr_assert_eq(tokenizer_load(&tok, dir), AV_SUCCESS, "%s", av_last_error());
    return tok;
}

static bool is_char_boundary(const char *text, size_t len, int64_t at) {
    return at <= 0 || (size_t)at >= len || ((unsigned char)text[at] & 0xC0) != 0x80;
}

// Hugging Face gives each token the characters it came from; attnviz gives it its own bytes. So a token of whole
// characters spans what Hugging Face says (and, where NFC changed the text, at least that), and a token that is part
// of a character lies inside that character's span.
static void expect_span(const char *text, size_t len, bool normalized_away, int i, int64_t start, int64_t end,
                        const cJSON *want) {
    int64_t want_start = (int64_t)cJSON_GetArrayItem(want, 0)->valuedouble;
    int64_t want_end = (int64_t)cJSON_GetArrayItem(want, 1)->valuedouble;
    if (!is_char_boundary(text, len, start) || !is_char_boundary(text, len, end))
        cr_expect(want_start <= start && end <= want_end, "\"%s\": token %d spans [%lld, %lld), outside [%lld, %lld)",
                  text, i, (long long)start, (long long)end, (long long)want_start, (long long)want_end);
    else if (normalized_away)
        cr_expect(start <= want_start && want_end <= end, "\"%s\": token %d spans [%lld, %lld), within [%lld, %lld)",
                  text, i, (long long)start, (long long)end, (long long)want_start, (long long)want_end);
    else
        cr_expect(start == want_start && end == want_end, "\"%s\": token %d spans [%lld, %lld), want [%lld, %lld)",
                  text, i, (long long)start, (long long)end, (long long)want_start, (long long)want_end);
}

static void expect_decoded(const tokenizer *tok, const int32_t *ids, int n, const char *want, const char *what) {
    char *text;
    size_t len;
    cr_assert_eq(tokenizer_decode(tok, ids, n, &text, &len), AV_SUCCESS, "%s", av_last_error());
    cr_expect(len == strlen(want) && !memcmp(text, want, len), "%s: decoded \"%s\", want \"%s\"", what, text, want);
    free(text);
}

// {"text", "ids"}: the ids, and the spans of the text's tokens tile it.
static void expect_case_ids(const tokenizer *tok, const cJSON *c) {
    const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
    int n = cJSON_GetArraySize(ids);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "\"%s\": %s", text, av_last_error());
    cr_expect_eq(list.n, n, "\"%s\": %d tokens, want %d", text, list.n, n);
    int64_t at = 0;
    for (int i = 0; i < n && i < list.n; i++) {
        int32_t want = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        cr_expect_eq(list.ids[i], want, "\"%s\": token %d is %d, want %d", text, i, list.ids[i], want);
        cr_expect(list.ends[i] == 0 || list.starts[i] == at, "\"%s\": token %d starts at %lld, want %lld", text, i,
                  (long long)list.starts[i], (long long)at);
        at = list.ends[i];
    }
    cr_expect_eq(at, (int64_t)strlen(text), "\"%s\": the tokens end at %lld", text, (long long)at);
    token_list_free(&list);
}

// One line of cases.jsonl: {"text", "ids", "byte_offsets", "decoded"}.
static void expect_case(const tokenizer *tok, const cJSON *c) {
    const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
    const char *decoded = cJSON_GetObjectItemCaseSensitive(c, "decoded")->valuestring;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(c, "byte_offsets");
    size_t len = strlen(text);
    int n = cJSON_GetArraySize(ids);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, len, &list), AV_SUCCESS, "\"%s\": %s", text, av_last_error());
    cr_expect_eq(list.n, n, "\"%s\": %d tokens, want %d", text, list.n, n);
    bool normalized_away = !strstr(decoded, text); // NFC changed the text (a BOS comes before it in DECODED)
    for (int i = 0; i < n && i < list.n; i++) {
        int32_t want = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        cr_expect_eq(list.ids[i], want, "\"%s\": token %d is %d, want %d", text, i, list.ids[i], want);
        expect_span(text, len, normalized_away, i, list.starts[i], list.ends[i], cJSON_GetArrayItem(spans, i));
    }
    expect_decoded(tok, list.ids, list.n, decoded, text);
    token_list_free(&list);
}

static void expect_all_cases(const char *dir) {
    tokenizer *tok = load_or_fail(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/cases.jsonl", dir);
    char *data;
    size_t len;
    cr_assert_eq(av_read_file(path, &data, &len), AV_SUCCESS, "%s", av_last_error());
    int n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cJSON *c = cJSON_Parse(line);
        cr_assert(c, "%s: bad line %d", path, n + 1);
        expect_case(tok, c);
        cJSON_Delete(c);
    }
    free(data);
    cr_expect_geq(n, 40, "%s: expected the full cases file", path);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe_json, llama3_layout_matches_hugging_face) { expect_all_cases(LLAMA3_DIR); }

Test(tokenizer_bpe_json, qwen2_layout_matches_hugging_face) { expect_all_cases(QWEN2_DIR); }

Test(tokenizer_bpe_json, llama3_bos_comes_first_with_an_empty_span) {
    tokenizer *tok = load_or_fail(LLAMA3_DIR);
    const char *text = "Hi <|begin_of_text|>";
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    cr_assert_geq(list.n, 3);
    cr_expect_eq(list.starts[0], 0);
    cr_expect_eq(list.ends[0], 0);
    cr_expect_str_eq(list.display[0], "<|begin_of_text|>");
    expect_decoded(tok, list.ids, 1, "<|begin_of_text|>", "BOS");
    cr_expect_eq(list.starts[1], 0, "the prompt's first token starts at 0");
    // The same token written in the prompt spans its 17 bytes.
    cr_expect_eq(list.ids[list.n - 1], list.ids[0]);
    cr_expect_eq(list.starts[list.n - 1], 3);
    cr_expect_eq(list.ends[list.n - 1], 20);
    // The template adds the BOS even to no text at all, as Hugging Face does.
    int32_t bos = list.ids[0];
    token_list_free(&list);
    cr_assert_eq(tokenizer_encode(tok, "", 0, &list), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(list.n, 1);
    cr_expect_eq(list.ids[0], bos);
    token_list_free(&list);
    tokenizer_destroy(tok);
}

static void expect_ids(const tokenizer *tok, const char *text, const int32_t *want, int n) {
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    cr_expect_eq(list.n, n, "\"%s\": %d tokens, want %d", text, list.n, n);
    for (int i = 0; i < n && i < list.n; i++)
        cr_expect_eq(list.ids[i], want[i], "\"%s\": token %d is %d, want %d", text, i, list.ids[i], want[i]);
    token_list_free(&list);
}

static char *edited_fixture(const char *fixture_dir, const char *object, const char *key, const char *value);

// An added token that begins another: the longer one wins where both match (ids from Hugging Face tokenizers).
Test(tokenizer_bpe_json, the_longest_added_token_wins) {
    char *dir = edited_fixture(LLAMA3_DIR, "/", "added_tokens",
                               "[{\"id\": 1064, \"content\": \"<|end\", \"special\": true},"
                               " {\"id\": 1062, \"content\": \"<|begin_of_text|>\", \"special\": true},"
                               " {\"id\": 1063, \"content\": \"<|end_of_text|>\", \"special\": true}]");
    tokenizer *tok = load_or_fail(dir);
    expect_ids(tok, "a<|end_of_text|>", (const int32_t[]){1062, 64, 1063}, 3);
    expect_ids(tok, "a<|end_of", (const int32_t[]){1062, 64, 1064, 62, 78, 69}, 6);
    expect_ids(tok, "<|end<|end_of_text|>", (const int32_t[]){1062, 1064, 1063}, 3);
    tokenizer_destroy(tok);
    remove_tree(dir);
    free(dir);
}

// decode(encode(p)) == p without the template's tokens, where p is NFC already.
static void expect_round_trip(const char *dir, const char *text) {
    tokenizer *tok = load_or_fail(dir);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    int first = list.n > 0 && list.ends[0] == 0 ? 1 : 0;
    expect_decoded(tok, list.ids + first, list.n - first, text, text);
    token_list_free(&list);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe_json, decode_round_trips) {
    const char *texts[] = {"Hello 1234567 worlds'S\r\n\t  x  ", "東京 😀 naïve\u00a0\n\n",
                           "<|im_start|>hi<|im_end|>"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        expect_round_trip(LLAMA3_DIR, texts[i]);
        expect_round_trip(QWEN2_DIR, texts[i]);
    }
}

Test(tokenizer_bpe_json, nfc_tokens_span_the_characters_they_came_from) {
    tokenizer *tok = load_or_fail(QWEN2_DIR);
    const char *text = "Cafe\xCC\x81!"; // "Café!" with a combining acute
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    expect_decoded(tok, list.ids, list.n, "Caf\xC3\xA9!", text);
    cr_assert_geq(list.n, 2);
    cr_expect_eq(list.starts[list.n - 1], 6, "\"!\" starts after the 2 characters of e + U+0301");
    cr_expect_eq(list.ends[list.n - 1], 7);
    cr_expect_eq(list.ends[list.n - 2], 6);
    token_list_free(&list);
    tokenizer_destroy(tok);
}

// ---- refused and malformed pipelines ----

// Walks a JSON pointer ("/pre_tokenizer/pretokenizers/0") from ROOT.
static cJSON *json_at(cJSON *root, const char *pointer) {
    char *copy = strdup(pointer), *rest = NULL;
    cJSON *at = root;
    for (char *key = strtok_r(copy, "/", &rest); key && at; key = strtok_r(NULL, "/", &rest))
        at = cJSON_IsArray(at) ? cJSON_GetArrayItem(at, atoi(key)) : cJSON_GetObjectItemCaseSensitive(at, key);
    free(copy);
    cr_assert(at, "no %s in the fixture", pointer);
    return at;
}

// The fixture's tokenizer.json with OBJECT's KEY set to VALUE (JSON text), in a scratch directory.
static char *edited_fixture(const char *fixture_dir, const char *object, const char *key, const char *value) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", fixture_dir);
    cJSON *root = read_json(path);
    cJSON *parent = json_at(root, object);
    cJSON *item = cJSON_Parse(value);
    cr_assert(item, "bad test JSON %s", value);
    if (cJSON_IsArray(parent)) cJSON_ReplaceItemInArray(parent, atoi(key), item);
    else if (cJSON_GetObjectItemCaseSensitive(parent, key)) cJSON_ReplaceItemInObjectCaseSensitive(parent, key, item);
    else cJSON_AddItemToObject(parent, key, item);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *dir = make_scratch_dir("bpe-json-edit");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_bytes(path, json, strlen(json));
    free(json);
    return dir;
}

typedef struct edit {
    const char *object, *key, *value;
    av_status want;
    const char *message_part;
} edit;

static void expect_edits_refused(const char *fixture_dir, const edit *edits, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const edit *e = &edits[i];
        char *dir = edited_fixture(fixture_dir, e->object, e->key, e->value);
        tokenizer *tok = (tokenizer *)1;
        av_status status = tokenizer_load(&tok, dir);
        cr_expect_eq(status, e->want, "%s %s = %s: status %d (%s), want %d", e->object, e->key, e->value, status,
                     av_last_error(), e->want);
        cr_expect_null(tok);
        cr_expect(strstr(av_last_error(), e->message_part) && strstr(av_last_error(), "tokenizer.json: "),
                  "%s %s = %s: message \"%s\" lacks \"%s\"", e->object, e->key, e->value, av_last_error(),
                  e->message_part);
        cr_expect_null(strchr(av_last_error(), '\n'));
        remove_tree(dir);
        free(dir);
    }
}

Test(tokenizer_bpe_json, other_pre_tokenizers_are_refused) {
    const edit edits[] = {
        {"/", "pre_tokenizer", "null", AV_ERROR_UNSUPPORTED, "pre_tokenizer null is not supported"},
        {"/", "pre_tokenizer", "{\"type\": \"Metaspace\"}", AV_ERROR_UNSUPPORTED, "pre_tokenizer Metaspace"},
        {"/pre_tokenizer/pretokenizers", "1", "{\"type\": \"Digits\"}", AV_ERROR_UNSUPPORTED,
         "pre_tokenizer Sequence [Split, Digits] is not supported"},
        {"/pre_tokenizer/pretokenizers/0", "behavior", "\"Removed\"", AV_ERROR_UNSUPPORTED,
         "Split behavior Removed"},
        {"/pre_tokenizer/pretokenizers/0", "invert", "true", AV_ERROR_UNSUPPORTED, "Split invert true"},
        {"/pre_tokenizer/pretokenizers/0", "pattern", "{\"String\": \" \"}", AV_ERROR_UNSUPPORTED, "Split pattern"},
        {"/pre_tokenizer/pretokenizers/1", "use_regex", "true", AV_ERROR_UNSUPPORTED,
         "pretokenizers[1]: ByteLevel use_regex true"},
        {"/pre_tokenizer/pretokenizers/1", "add_prefix_space", "true", AV_ERROR_UNSUPPORTED, "add_prefix_space true"},
        {"/pre_tokenizer/pretokenizers/0/pattern", "Regex", "\"(?i:'s|\\\\p{L\"", AV_ERROR_FORMAT,
         "pre_tokenizer Split regex: "},
        {"/", "pre_tokenizer", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", AV_ERROR_UNSUPPORTED,
         "pre_tokenizer: ByteLevel add_prefix_space true"},
        {"/", "pre_tokenizer", "{\"type\": \"ByteLevel\", \"use_regex\": false}", AV_ERROR_UNSUPPORTED,
         "use_regex false"},
    };
    expect_edits_refused(LLAMA3_DIR, edits, sizeof edits / sizeof *edits);
}

Test(tokenizer_bpe_json, other_normalizers_post_processors_and_decoders_are_refused) {
    const edit edits[] = {
        {"/", "normalizer", "{\"type\": \"NFD\"}", AV_ERROR_UNSUPPORTED, "normalizer NFD is not supported"},
        {"/", "normalizer", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}]}", AV_ERROR_UNSUPPORTED,
         "normalizer Sequence [NFC]"},
        {"/", "post_processor", "{\"type\": \"RobertaProcessing\"}", AV_ERROR_UNSUPPORTED,
         "post_processor RobertaProcessing"},
        {"/post_processor/processors", "0", "{\"type\": \"BertProcessing\"}", AV_ERROR_UNSUPPORTED,
         "post_processor Sequence [BertProcessing, TemplateProcessing]"},
        {"/post_processor/processors/1/single", "1", "{\"Sequence\": {\"id\": \"B\", \"type_id\": 0}}",
         AV_ERROR_UNSUPPORTED, "single[1] is neither"},
        {"/post_processor/processors/1/special_tokens/<|begin_of_text|>", "ids", "[]", AV_ERROR_FORMAT,
         "no ids for \"<|begin_of_text|>\""},
        {"/post_processor/processors/1/special_tokens/<|begin_of_text|>", "ids", "[99999]", AV_ERROR_FORMAT,
         "id 99999, which is not in the vocab"},
        {"/", "decoder", "{\"type\": \"Metaspace\"}", AV_ERROR_UNSUPPORTED, "decoder Metaspace"},
    };
    expect_edits_refused(LLAMA3_DIR, edits, sizeof edits / sizeof *edits);
    const edit qwen2_edits[] = {
        {"/added_tokens/0", "normalized", "true", AV_ERROR_UNSUPPORTED, "\"<|endoftext|>\" has normalized true"},
    };
    expect_edits_refused(QWEN2_DIR, qwen2_edits, 1);
}

Test(tokenizer_bpe_json, model_options_that_change_ids_are_refused) {
    const edit edits[] = {
        {"/model", "byte_fallback", "true", AV_ERROR_UNSUPPORTED, "model.byte_fallback true"},
        {"/model", "continuing_subword_prefix", "\"##\"", AV_ERROR_UNSUPPORTED, "model.continuing_subword_prefix"},
        {"/model", "end_of_word_suffix", "\"</w>\"", AV_ERROR_UNSUPPORTED, "model.end_of_word_suffix \"</w>\""},
        {"/model", "dropout", "0.1", AV_ERROR_UNSUPPORTED, "model.dropout"},
        {"/model", "ignore_merges", "\"yes\"", AV_ERROR_FORMAT, "model.ignore_merges is not true, false or null"},
        {"/added_tokens/1", "lstrip", "true", AV_ERROR_UNSUPPORTED, "added_tokens[1]: lstrip true"},
    };
    expect_edits_refused(LLAMA3_DIR, edits, sizeof edits / sizeof *edits);
}

// Split regexes that leave text between matches or match the empty string (split_cases.jsonl): Hugging Face makes
// the text between matches a piece too.
Test(tokenizer_bpe_json, split_keeps_the_text_between_matches) {
    char *data;
    size_t len;
    cr_assert_eq(av_read_file(LLAMA3_DIR "/split_cases.jsonl", &data, &len), AV_SUCCESS, "%s", av_last_error());
    int n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cJSON *c = cJSON_Parse(line);
        cr_assert(c, "split_cases.jsonl: bad line %d", n + 1);
        cJSON *pattern = cJSON_CreateString(cJSON_GetObjectItemCaseSensitive(c, "pattern")->valuestring);
        char *value = cJSON_PrintUnformatted(pattern);
        char *dir = edited_fixture(LLAMA3_DIR, "/pre_tokenizer/pretokenizers/0/pattern", "Regex", value);
        tokenizer *tok = load_or_fail(dir);
        expect_case_ids(tok, c);
        tokenizer_destroy(tok);
        remove_tree(dir);
        free(dir);
        free(value);
        cJSON_Delete(pattern);
        cJSON_Delete(c);
    }
    free(data);
    cr_expect_geq(n, 12);
}
