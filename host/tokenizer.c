// The tokenizer front door: picks a family from the files in a model directory, wraps the encode/decode calls,
// and holds the helpers every family shares (token_list growth, strict UTF-8 checking).
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// tokenizer.json is read first when it exists: it carries the pre-tokenization regex, the normalizer and the BOS
// template, which vocab.json + merges.txt (also shipped by Qwen2 checkpoints, whose regex is not GPT-2's) lack.
static av_status load_from_tokenizer_json(tokenizer **out, const char *path) {
    cJSON *root;
    AV_TRY(tokenizer_parse_json_file(path, &root));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    av_status status;
    if (!cJSON_IsString(type))
        status = av_fail(AV_ERROR_FORMAT, "%s: no string model.type", path);
    else if (!strcmp(type->valuestring, "BPE"))
        status = bpe_tokenizer_load_json(out, root, path);
    else if (!strcmp(type->valuestring, "WordPiece"))
        status = wordpiece_tokenizer_load_json(out, root, path);
    else
        status = av_fail(AV_ERROR_UNSUPPORTED, "%s: model.type \"%s\" is not supported (BPE or WordPiece)", path,
                         type->valuestring);
    cJSON_Delete(root);
    return status;
}

av_status tokenizer_parse_json_file(const char *path, cJSON **root) {
    char *data;
    size_t len;
    AV_TRY(av_read_file(path, &data, &len));
    const char *error_at = NULL;
    *root = cJSON_ParseWithLengthOpts(data, len, &error_at, false);
    size_t error_offset = error_at ? (size_t)(error_at - data) : 0;
    free(data);
    if (!*root) return av_fail(AV_ERROR_FORMAT, "%s: not valid JSON (near byte %zu)", path, error_offset);
    return AV_SUCCESS;
}

av_status tokenizer_load(tokenizer **out, const char *dir) {
    if (!out || !dir) return av_fail(AV_ERROR_INVALID_ARGUMENT, "tokenizer_load: NULL argument");
    *out = NULL;
    char *vocab_json = av_path_join(dir, "vocab.json");
    char *merges_txt = av_path_join(dir, "merges.txt");
    char *tokenizer_json = av_path_join(dir, "tokenizer.json");
    char *vocab_txt = av_path_join(dir, "vocab.txt");
    av_status status;
    if (!vocab_json || !merges_txt || !tokenizer_json || !vocab_txt)
        status = av_fail(AV_ERROR_OUT_OF_MEMORY, "%s: out of memory joining tokenizer paths", dir);
    else if (av_file_exists(tokenizer_json))
        status = load_from_tokenizer_json(out, tokenizer_json);
    else if (av_file_exists(vocab_json) && av_file_exists(merges_txt))
        status = bpe_tokenizer_load_files(out, vocab_json, merges_txt);
    else if (av_file_exists(vocab_txt))
        status = wordpiece_tokenizer_load(out, dir);
    else
        status = av_fail(AV_ERROR_IO, "%s: no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, "
                                      "vocab.txt)", dir);
    free(vocab_json);
    free(merges_txt);
    free(tokenizer_json);
    free(vocab_txt);
    return status;
}

av_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, token_list *out) {
    if (!tok || !out || (!text && len > 0))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "tokenizer_encode: NULL argument");
    memset(out, 0, sizeof *out);
    if (len == 0) text = ""; // still encoded: the template's tokens ([CLS] [SEP], Llama 3's BOS) stand alone
    // Checked here so that every family can trust its input; the CLI decides whether zero tokens is an error.
    AV_TRY(utf8_validate(text, len));
    av_status status = tok->encode(tok, text, len, out);
    if (status != AV_SUCCESS) token_list_free(out);
    return status;
}

av_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len) {
    if (!tok || !text || !len || n < 0 || (!ids && n > 0))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "tokenizer_decode: bad argument");
    *text = NULL;
    *len = 0;
    return tok->decode(tok, ids, n, text, len);
}

void tokenizer_destroy(tokenizer *tok) {
    if (tok) tok->destroy(tok);
}

void token_list_free(token_list *list) {
    if (!list) return;
    if (list->display)
        for (int i = 0; i < list->n; i++) free(list->display[i]);
    free(list->ids);
    free(list->starts);
    free(list->ends);
    free(list->display);
    memset(list, 0, sizeof *list);
}

// token_list has no capacity field: the capacity is implied by n (16, then powers of two), so the arrays grow
// exactly when n reaches one of those sizes.
static bool token_list_is_full(int n) { return n == 0 || (n >= 16 && (n & (n - 1)) == 0); }

static av_status token_list_grow(token_list *list) {
    size_t capacity = list->n == 0 ? 16 : (size_t)list->n * 2;
    if (capacity > INT32_MAX) return av_fail(AV_ERROR_PROMPT, "prompt: more than %d tokens", INT32_MAX / 2);
    int32_t *ids = realloc(list->ids, capacity * sizeof *ids);
    if (ids) list->ids = ids;
    int64_t *starts = realloc(list->starts, capacity * sizeof *starts);
    if (starts) list->starts = starts;
    int64_t *ends = realloc(list->ends, capacity * sizeof *ends);
    if (ends) list->ends = ends;
    char **display = realloc(list->display, capacity * sizeof *display);
    if (display) list->display = display;
    if (!ids || !starts || !ends || !display)
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory growing the token list to %zu tokens", capacity);
    return AV_SUCCESS;
}

av_status token_list_push(token_list *list, int32_t id, int64_t start, int64_t end, const char *display) {
    if (!list || !display) return av_fail(AV_ERROR_INVALID_ARGUMENT, "token_list_push: NULL argument");
    if (token_list_is_full(list->n)) AV_TRY(token_list_grow(list));
    size_t display_len = strlen(display);
    char *copy = av_malloc(display_len + 1, "token display string");
    if (!copy) return AV_ERROR_OUT_OF_MEMORY;
    memcpy(copy, display, display_len + 1);
    list->ids[list->n] = id;
    list->starts[list->n] = start;
    list->ends[list->n] = end;
    list->display[list->n] = copy;
    list->n++;
    return AV_SUCCESS;
}

static bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

int utf8_char_length(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    if (len == 0) return 0;
    unsigned char lead = s[0];
    if (lead < 0x80) return 1;
    int need;
    uint32_t min;
    uint32_t code;
    if (lead >= 0xC2 && lead <= 0xDF) need = 1, min = 0x80, code = lead & 0x1F;
    else if ((lead & 0xF0) == 0xE0) need = 2, min = 0x800, code = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4) need = 3, min = 0x10000, code = lead & 0x07;
    else return 0; // a stray continuation byte, an overlong C0/C1 lead or F5..FF
    if ((size_t)need >= len) return 0;
    for (int i = 1; i <= need; i++) {
        if (!is_continuation(s[i])) return 0;
        code = (code << 6) | (s[i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return need + 1;
}

static const char *utf8_problem(const unsigned char *s, size_t len) {
    unsigned char lead = s[0];
    if (is_continuation(lead)) return "unexpected continuation byte";
    if (lead == 0xC0 || lead == 0xC1) return "overlong encoding";
    if (lead >= 0xF5) return "byte never valid in UTF-8";
    int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
    for (int i = 1; i <= need; i++)
        if ((size_t)i >= len || !is_continuation(s[i])) return "truncated multi-byte sequence";
    if ((lead == 0xE0 && s[1] < 0xA0) || (lead == 0xF0 && s[1] < 0x90)) return "overlong encoding";
    if (lead == 0xED && s[1] >= 0xA0) return "UTF-16 surrogate";
    return "code point beyond U+10FFFF";
}

// Bytes that are not a complete UTF-8 character on their own (part of a character split across tokens) and
// control characters show as <0xE2>; whitespace is made visible so that axis labels can be told apart.
static void build_display(const char *bytes, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)bytes[i];
        int step = utf8_char_length(bytes + i, len - i);
        if (c == ' ') n += (size_t)sprintf(out + n, "\xC2\xB7");
        else if (c == '\n') n += (size_t)sprintf(out + n, "\\n");
        else if (c == '\t') n += (size_t)sprintf(out + n, "\\t");
        else if (c == '\r') n += (size_t)sprintf(out + n, "\\r");
        else if (step == 0 || c < 0x20 || c == 0x7F) n += (size_t)sprintf(out + n, "<0x%02X>", c);
        else {
            memcpy(out + n, bytes + i, (size_t)step);
            n += (size_t)step;
            i += (size_t)step;
            continue;
        }
        i++;
    }
    out[n] = '\0';
}

char *token_display_string(const char *bytes, size_t len) {
    char *display = av_malloc(6 * len + 1, "token display string"); // "<0xAB>" is the widest form of a byte
    if (display) build_display(bytes, len, display);
    return display;
}

av_status utf8_validate(const char *text, size_t len) {
    size_t offset = 0;
    while (offset < len) {
        int step = utf8_char_length(text + offset, len - offset);
        if (step == 0) {
            const unsigned char *at = (const unsigned char *)text + offset;
            return av_fail(AV_ERROR_PROMPT, "prompt: invalid UTF-8 at byte offset %zu (0x%02X: %s)", offset, at[0],
                           utf8_problem(at, len - offset));
        }
        offset += (size_t)step;
    }
    return AV_SUCCESS;
}
