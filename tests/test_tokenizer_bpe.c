// GPT-2 byte-level BPE against the reference ids in shared/data/gpt2-tokenizer/cases.jsonl, through both file
// layouts (vocab.json + merges.txt, tokenizer.json with either merges form), plus offsets, display strings,
// special tokens, invalid UTF-8 and malformed files.
#include "support.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_DIR SHARED("data/gpt2-tokenizer")

typedef struct reference_case {
    char *text;
    size_t len;
    int32_t *ids;
    int n;
} reference_case;

static char *read_all(const char *path, size_t *len) {
    char *data;
    cr_assert_eq(av_read_file(path, &data, len), AV_SUCCESS, "%s", av_last_error());
    return data;
}

static reference_case *load_cases(int *count) {
    size_t len;
    char *data = read_all(SHARED("data/gpt2-tokenizer/cases.jsonl"), &len);
    reference_case *cases = NULL;
    int n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *root = cJSON_Parse(line);
        cr_assert(root, "cases.jsonl: bad line %d", n + 1);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "ids");
        cr_assert(cJSON_IsString(text) && cJSON_IsArray(ids));
        cases = realloc(cases, (size_t)(n + 1) * sizeof *cases);
        reference_case *c = &cases[n++];
        c->len = strlen(text->valuestring);
        c->text = strdup(text->valuestring);
        c->n = cJSON_GetArraySize(ids);
        c->ids = malloc((size_t)c->n * sizeof *c->ids + 1);
        for (int i = 0; i < c->n; i++) c->ids[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        cJSON_Delete(root);
    }
    free(data);
    cr_assert_geq(n, 10, "expected the full cases file");
    *count = n;
    return cases;
}

static void free_cases(reference_case *cases, int n) {
    for (int i = 0; i < n; i++) {
        free(cases[i].text);
        free(cases[i].ids);
    }
    free(cases);
}

static tokenizer *load_or_fail(const char *dir) {
    tokenizer *tok = NULL;
    cr_assert_eq(tokenizer_load(&tok, dir), AV_SUCCESS, "%s", av_last_error());
    cr_assert_str_eq(tok->kind, "byte-level-bpe");
    return tok;
}

static void expect_reference_ids(const tokenizer *tok, const reference_case *c) {
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, c->text, c->len, &list), AV_SUCCESS, "%s: %s", c->text, av_last_error());
    cr_expect_eq(list.n, c->n, "\"%s\": %d tokens, want %d", c->text, list.n, c->n);
    for (int i = 0; i < c->n && i < list.n; i++)
        cr_expect_eq(list.ids[i], c->ids[i], "\"%s\": token %d is %d, want %d", c->text, i, list.ids[i], c->ids[i]);
    token_list_free(&list);
}

static void expect_all_cases(const tokenizer *tok) {
    int n;
    reference_case *cases = load_cases(&n);
    for (int i = 0; i < n; i++) expect_reference_ids(tok, &cases[i]);
    free_cases(cases, n);
}

Test(tokenizer_bpe, vocab_and_merges_encode_reference_ids) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    expect_all_cases(tok);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe, decode_round_trips_every_case) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    int n;
    reference_case *cases = load_cases(&n);
    for (int i = 0; i < n; i++) {
        char *text;
        size_t len;
        cr_assert_eq(tokenizer_decode(tok, cases[i].ids, cases[i].n, &text, &len), AV_SUCCESS, "%s", av_last_error());
        cr_expect_eq(len, cases[i].len, "case %d: decoded %zu bytes, want %zu", i, len, cases[i].len);
        cr_expect(len == cases[i].len && !memcmp(text, cases[i].text, len), "case %d: \"%s\" != \"%s\"", i, text,
                  cases[i].text);
        cr_expect_eq(text[len], '\0');
        free(text);
    }
    free_cases(cases, n);
    tokenizer_destroy(tok);
}

// Offsets tile the prompt, and each token's span holds exactly the bytes the token decodes to.
static void expect_offsets_tile(const tokenizer *tok, const char *text, size_t len) {
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, len, &list), AV_SUCCESS, "%s", av_last_error());
    int64_t at = 0;
    for (int i = 0; i < list.n; i++) {
        cr_expect_eq(list.starts[i], at, "\"%s\": token %d starts at %lld, want %lld", text, i,
                     (long long)list.starts[i], (long long)at);
        cr_expect_gt(list.ends[i], list.starts[i], "\"%s\": token %d is empty", text, i);
        char *piece;
        size_t piece_len;
        cr_assert_eq(tokenizer_decode(tok, &list.ids[i], 1, &piece, &piece_len), AV_SUCCESS);
        cr_expect_eq((int64_t)piece_len, list.ends[i] - list.starts[i], "\"%s\": token %d span", text, i);
        cr_expect(!memcmp(piece, text + list.starts[i], piece_len), "\"%s\": token %d bytes differ", text, i);
        free(piece);
        cr_expect(list.display[i] && list.display[i][0], "\"%s\": token %d has no display string", text, i);
        at = list.ends[i];
    }
    cr_expect_eq(at, (int64_t)len, "\"%s\": tokens cover %lld of %zu bytes", text, (long long)at, len);
    token_list_free(&list);
}

Test(tokenizer_bpe, offsets_cover_the_text_contiguously) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    int n;
    reference_case *cases = load_cases(&n);
    for (int i = 0; i < n; i++) expect_offsets_tile(tok, cases[i].text, cases[i].len);
    expect_offsets_tile(tok, "a<|endoftext|>b  <|endoftext|>", 30);
    free_cases(cases, n);
    tokenizer_destroy(tok);
}

// tokenizer.json as Hugging Face writes it, built from the shared vocab.json and merges.txt.
static char *write_tokenizer_json(bool merges_as_pairs) {
    size_t len;
    char *vocab_text = read_all(GPT2_DIR "/vocab.json", &len);
    cJSON *vocab = cJSON_Parse(vocab_text);
    free(vocab_text);
    cr_assert(vocab);
    char *merges_text = read_all(GPT2_DIR "/merges.txt", &len);
    cJSON *merges = cJSON_CreateArray();
    for (char *line = strtok(merges_text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "#version", 8)) continue;
        if (merges_as_pairs) {
            char *space = strchr(line, ' ');
            cr_assert(space);
            *space = '\0';
            const char *pair[2] = {line, space + 1};
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
        } else {
            cJSON_AddItemToArray(merges, cJSON_CreateString(line));
        }
    }
    free(merges_text);
    cJSON *root = cJSON_CreateObject();
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *eot = cJSON_CreateObject();
    cJSON_AddNumberToObject(eot, "id", 50256);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eot, "special", true);
    cJSON_AddItemToArray(added, eot);
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", false);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char *dir = make_scratch_dir(merges_as_pairs ? "bpe-json-pairs" : "bpe-json-strings");
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_bytes(path, json, strlen(json));
    free(json);
    return dir;
}

static void expect_tokenizer_json_matches(bool merges_as_pairs) {
    char *dir = write_tokenizer_json(merges_as_pairs);
    tokenizer *tok = load_or_fail(dir);
    expect_all_cases(tok);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, "x<|endoftext|>", 14, &list), AV_SUCCESS, "%s", av_last_error());
    cr_expect(list.n == 2 && list.ids[1] == 50256, "added_tokens: <|endoftext|> not special");
    token_list_free(&list);
    tokenizer_destroy(tok);
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, tokenizer_json_with_string_merges) { expect_tokenizer_json_matches(false); }

Test(tokenizer_bpe, tokenizer_json_with_pair_merges) { expect_tokenizer_json_matches(true); }

Test(tokenizer_bpe, invalid_utf8_is_a_prompt_error) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    struct {
        const char *text;
        const char *offset;
    } bad[] = {
        {"ab\x80", "offset 2"},             // stray continuation byte
        {"a\xC0\xAF", "offset 1"},          // overlong '/'
        {"\xE0\x80\xAF", "offset 0"},       // overlong three-byte '/'
        {"xy\xED\xA0\x80", "offset 2"},     // UTF-16 surrogate U+D800
        {"\xF4\x90\x80\x80", "offset 0"},   // U+110000
        {"\xF8\x88\x80\x80\x80", "offset 0"}, // five-byte form
        {"abc\xE2\x82", "offset 3"},        // truncated at the end
        {"\xE2\x82x", "offset 0"},          // truncated by an ASCII byte
        {"ok \xFF", "offset 3"},            // never valid
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        token_list list;
        av_status status = tokenizer_encode(tok, bad[i].text, strlen(bad[i].text), &list);
        cr_expect_eq(status, AV_ERROR_PROMPT, "case %zu: status %d", i, status);
        cr_expect(strstr(av_last_error(), bad[i].offset), "case %zu: message \"%s\" lacks \"%s\"", i, av_last_error(),
                  bad[i].offset);
        cr_expect_eq(list.n, 0);
        cr_expect_eq(tok->encode(tok, bad[i].text, strlen(bad[i].text), &list), AV_ERROR_PROMPT,
                     "case %zu: the BPE encoder itself accepted it", i);
        token_list_free(&list);
    }
    // The largest code point and an embedded NUL are valid.
    cr_expect_eq(utf8_validate("\xF4\x8F\xBF\xBF", 4), AV_SUCCESS);
    cr_expect_eq(utf8_validate("a\0b", 3), AV_SUCCESS);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe, empty_text_gives_zero_tokens) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, "", 0, &list), AV_SUCCESS);
    cr_expect_eq(list.n, 0);
    token_list_free(&list);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe, end_of_text_is_the_special_token) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    const char *text = "Hello<|endoftext|> world";
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(list.n, 3);
    cr_expect_eq(list.ids[0], 15496);
    cr_expect_eq(list.ids[1], 50256);
    cr_expect_eq(list.ids[2], 995);
    cr_expect_eq(list.starts[1], 5);
    cr_expect_eq(list.ends[1], 18);
    cr_expect_str_eq(list.display[1], "<|endoftext|>");
    char *decoded;
    size_t len;
    cr_assert_eq(tokenizer_decode(tok, list.ids, list.n, &decoded, &len), AV_SUCCESS);
    cr_expect_str_eq(decoded, text);
    free(decoded);
    token_list_free(&list);

    // Not the whole marker: plain text.
    cr_assert_eq(tokenizer_encode(tok, "<|endoftext", 11, &list), AV_SUCCESS);
    for (int i = 0; i < list.n; i++) cr_expect_neq(list.ids[i], 50256);
    token_list_free(&list);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe, display_strings_make_whitespace_and_split_bytes_visible) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    const char *text = "Hello world\n\tx\r\n你";
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, strlen(text), &list), AV_SUCCESS, "%s", av_last_error());
    const char *want[] = {"Hello", "\xC2\xB7world", "\\n", "\\t", "x", "\\r", "\\n", "<0xE4><0xBD>", "<0xA0>"};
    int n_want = (int)(sizeof want / sizeof want[0]);
    cr_assert_eq(list.n, n_want, "%d tokens", list.n);
    for (int i = 0; i < n_want; i++)
        cr_expect_str_eq(list.display[i], want[i], "token %d displays \"%s\", want \"%s\"", i, list.display[i], want[i]);
    cr_expect_eq(list.ends[7] - list.starts[7], 2, "a token that is part of a character spans its own bytes");
    token_list_free(&list);
    tokenizer_destroy(tok);
}

Test(tokenizer_bpe, decode_rejects_unknown_ids) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    int32_t ids[] = {15496, 50257};
    char *text = NULL;
    size_t len;
    cr_expect_eq(tokenizer_decode(tok, ids, 2, &text, &len), AV_ERROR_INVALID_ARGUMENT);
    cr_expect_null(text);
    ids[1] = -1;
    cr_expect_eq(tokenizer_decode(tok, ids, 2, &text, &len), AV_ERROR_INVALID_ARGUMENT);
    tokenizer_destroy(tok);
}

// A scratch directory holding the real vocab.json and the given merges.txt.
static char *dir_with_merges(const char *merges) {
    char *dir = make_scratch_dir("bpe-merges");
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    copy_tree(GPT2_DIR "/vocab.json", path);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_bytes(path, merges, strlen(merges));
    return dir;
}

static void expect_load_fails(const char *dir, av_status want, const char *message_part) {
    tokenizer *tok = (tokenizer *)1;
    av_status status = tokenizer_load(&tok, dir);
    cr_expect_eq(status, want, "%s: status %d (%s), want %d", dir, status, av_last_error(), want);
    cr_expect_null(tok);
    cr_expect(strstr(av_last_error(), message_part), "message \"%s\" lacks \"%s\"", av_last_error(), message_part);
    cr_expect_null(strchr(av_last_error(), '\n'));
}

Test(tokenizer_bpe, malformed_merges_are_format_errors) {
    char *dir = dir_with_merges("#version: 0.2\n\xC4\xA0 t\nnospace\n");
    expect_load_fails(dir, AV_ERROR_FORMAT, "merges.txt line 3");
    remove_tree(dir);
    free(dir);
    dir = dir_with_merges("#version: 0.2\nqqqqqqqq qqqq\n");
    expect_load_fails(dir, AV_ERROR_FORMAT, "merges.txt line 2");
    remove_tree(dir);
    free(dir);
    dir = dir_with_merges("a b c\n");
    expect_load_fails(dir, AV_ERROR_FORMAT, "line 1");
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, tiny_merges_file_loads_and_round_trips) {
    // Only the merges given apply: "Ġ t" then "Ġt h"? The latter is absent, so " th" stays two tokens.
    char *dir = dir_with_merges("#version: 0.2\r\n\xC4\xA0 t\r\n\r\n");
    tokenizer *tok = load_or_fail(dir);
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, " th", 3, &list), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(list.n, 2);
    cr_expect_eq(list.ids[0], 256); // "Ġt"
    cr_expect_eq(list.ids[1], 71);  // "h"
    token_list_free(&list);
    tokenizer_destroy(tok);
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, malformed_json_files_are_format_errors) {
    char *dir = make_scratch_dir("bpe-bad-json");
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    write_bytes(path, "{\"a\": 0, ", 9);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_bytes(path, "#version: 0.2\n", 14);
    expect_load_fails(dir, AV_ERROR_FORMAT, "vocab.json");
    remove_tree(dir);
    free(dir);

    dir = make_scratch_dir("bpe-bad-vocab");
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    write_bytes(path, "{\"a\": 0, \"b\": \"one\"}", 20);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_bytes(path, "#version: 0.2\n", 14);
    expect_load_fails(dir, AV_ERROR_FORMAT, "\"b\"");
    remove_tree(dir);
    free(dir);

    dir = make_scratch_dir("bpe-no-bytes");
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    write_bytes(path, "{\"a\": 0, \"b\": 1}", 16);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_bytes(path, "#version: 0.2\na b\n", 18);
    expect_load_fails(dir, AV_ERROR_FORMAT, "single-byte token");
    remove_tree(dir);
    free(dir);

    dir = make_scratch_dir("bpe-bad-tokenizer-json");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_bytes(path, "{\"model\": {\"type\": \"BPE\"", 24);
    expect_load_fails(dir, AV_ERROR_FORMAT, "tokenizer.json");
    const char *huge_id = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 2000000000}, \"merges\": []}}";
    write_bytes(path, huge_id, strlen(huge_id));
    expect_load_fails(dir, AV_ERROR_FORMAT, "\"a\" has no valid id");
    const char *unknown = "{\"model\": {\"type\": \"Unigram\"}}";
    write_bytes(path, unknown, strlen(unknown));
    expect_load_fails(dir, AV_ERROR_UNSUPPORTED, "Unigram");
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, malformed_tokenizer_json_merges_name_the_entry) {
    char *dir = write_tokenizer_json(false);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t len;
    char *text = read_all(path, &len);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
    cJSON_ReplaceItemInArray(merges, 4, cJSON_CreateString("nospace"));
    char *json = cJSON_PrintUnformatted(root);
    write_bytes(path, json, strlen(json));
    free(json);
    expect_load_fails(dir, AV_ERROR_FORMAT, "model.merges[4]");
    cJSON_ReplaceItemInArray(merges, 4, cJSON_CreateString("qqqqqqqq qqqq"));
    json = cJSON_PrintUnformatted(root);
    write_bytes(path, json, strlen(json));
    free(json);
    expect_load_fails(dir, AV_ERROR_FORMAT, "model.merges[4]");
    cJSON_ReplaceItemInArray(merges, 4, cJSON_CreateNumber(7));
    json = cJSON_PrintUnformatted(root);
    write_bytes(path, json, strlen(json));
    free(json);
    expect_load_fails(dir, AV_ERROR_FORMAT, "model.merges[4]: neither");
    cJSON_Delete(root);
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, missing_files_are_io_errors) {
    char *dir = make_scratch_dir("bpe-empty");
    expect_load_fails(dir, AV_ERROR_IO, "vocab.json + merges.txt");
    cr_expect(strstr(av_last_error(), dir), "message names the directory: %s", av_last_error());
    remove_tree(dir);
    free(dir);
}

Test(tokenizer_bpe, four_thousand_token_text_round_trips_with_contiguous_offsets) {
    tokenizer *tok = load_or_fail(GPT2_DIR);
    int n;
    reference_case *cases = load_cases(&n);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    int expected_tokens = 0;
    // The cases joined by newlines (each case's text starts fresh after "\n" in most pre-tokenizations), repeated.
    while (expected_tokens < 4000) {
        for (int i = 0; i < n; i++) {
            cr_assert_lt(len + cases[i].len + 2, cap);
            memcpy(text + len, cases[i].text, cases[i].len);
            len += cases[i].len;
            text[len++] = '\n';
            expected_tokens += cases[i].n + 1;
        }
    }
    token_list list;
    cr_assert_eq(tokenizer_encode(tok, text, len, &list), AV_SUCCESS, "%s", av_last_error());
    cr_expect_geq(list.n, 3500);
    for (int i = 0; i < list.n; i++)
        cr_assert_eq(list.starts[i], i ? list.ends[i - 1] : 0, "token %d does not start where %d ended", i, i - 1);
    cr_assert_eq(list.ends[list.n - 1], (int64_t)len);
    char *decoded;
    size_t decoded_len;
    cr_assert_eq(tokenizer_decode(tok, list.ids, list.n, &decoded, &decoded_len), AV_SUCCESS);
    cr_assert_eq(decoded_len, len);
    cr_assert(memcmp(decoded, text, len) == 0, "decode(encode(text)) differs from text");
    free(decoded);
    token_list_free(&list);
    free(text);
    free_cases(cases, n);
    tokenizer_destroy(tok);
}
