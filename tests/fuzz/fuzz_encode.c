// Prompts through the real tokenizers: GPT-2's (vocab.json and merges.txt of ../shared/data/gpt2-tokenizer) when
// the first byte is even, the BERT uncased WordPiece of tests/data/wordpiece when odd; the rest is the prompt.
// Properties, beyond not crashing:
//   - invalid UTF-8 fails with AV_ERROR_PROMPT, valid UTF-8 encodes;
//   - GPT-2: the tokens' byte spans tile the prompt in order, and decoding the ids gives the prompt back, byte
//     for byte (byte-level BPE loses nothing);
//   - the viewer's tokens (gaps and texts) give the prompt back up to the last token's end, as valid UTF-8 JSON;
//   - WordPiece: [CLS] first and [SEP] last with empty spans, every other span inside the prompt, non-empty and in
//     order; pieces of one character share its span (a Hangul syllable, split into jamo by accent stripping's NFD,
//     becomes two or three tokens over the same three bytes, as in Hugging Face's offsets).
#include "fuzz_support.h"

#include "tokenizer.h"
#include "viewer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if !defined(AV_FUZZ_GPT2_TOKENIZER_DIR) || !defined(AV_FUZZ_WORDPIECE_DIR)
#error "AV_FUZZ_GPT2_TOKENIZER_DIR and AV_FUZZ_WORDPIECE_DIR name the tokenizers"
#endif

static tokenizer *load_once(tokenizer **slot, const char *dir) {
    if (!*slot && tokenizer_load(slot, dir) != AV_SUCCESS) {
        fuzz_require(0, av_last_error());
    }
    return *slot;
}

static void check_gpt2(const tokenizer *tok, const token_list *list, const char *text, size_t len) {
    int64_t at = 0;
    for (int i = 0; i < list->n; i++) {
        fuzz_require(list->starts[i] == at && list->ends[i] > at, "GPT-2 spans tile the prompt in order");
        at = list->ends[i];
    }
    fuzz_require(at == (int64_t)len, "GPT-2 spans cover the whole prompt");
    char *decoded;
    size_t decoded_len;
    fuzz_require(tokenizer_decode(tok, list->ids, list->n, &decoded, &decoded_len) == AV_SUCCESS, "decode");
    fuzz_require(decoded_len == len && memcmp(decoded, text, len) == 0, "decode(encode(prompt)) == prompt");
    free(decoded);
}

static void check_wordpiece(const token_list *list, size_t len) {
    fuzz_require(list->n >= 2, "[CLS] and [SEP] are always there");
    fuzz_require(list->starts[0] == list->ends[0] && list->starts[list->n - 1] == list->ends[list->n - 1],
                 "[CLS] and [SEP] have empty spans");
    int64_t start = 0, end = 0;
    for (int i = 1; i < list->n - 1; i++) {
        fuzz_require(list->starts[i] >= start && list->ends[i] >= end && list->ends[i] > list->starts[i] &&
                         list->ends[i] <= (int64_t)len,
                     "WordPiece spans are non-empty, in order and inside the prompt");
        start = list->starts[i];
        end = list->ends[i];
    }
}

static int64_t last_end(const token_list *list) {
    int64_t end = 0;
    for (int i = 0; i < list->n; i++)
        if (list->ends[i] > end) end = list->ends[i];
    return end;
}

static void check_viewer_tokens(const token_list *list, const char *text, size_t len) {
    cJSON *tokens = viewer_tokens_json(text, len, list), *t;
    char *json = cJSON_PrintUnformatted(tokens);
    fuzz_require(json && utf8_validate(json, strlen(json)) == AV_SUCCESS, "the viewer's tokens are UTF-8 JSON");
    free(json);
    size_t at = 0;
    bool same = true;
    cJSON_ArrayForEach(t, tokens) {
        const cJSON *gap = cJSON_GetObjectItem(t, "gap"), *own = cJSON_GetObjectItem(t, "text");
        const char *pieces[2] = {gap ? gap->valuestring : "", own->valuestring};
        bool shown = !cJSON_GetObjectItem(t, "special") && !cJSON_GetObjectItem(t, "part");
        for (int k = 0; k < (shown ? 2 : 1); k++) {
            size_t n = strlen(pieces[k]);
            same = same && at + n <= len && memcmp(text + at, pieces[k], n) == 0;
            at += n;
        }
    }
    fuzz_require(same && at == (size_t)last_end(list), "the viewer's gaps and texts give the prompt back");
    cJSON_Delete(tokens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tokenizer *gpt2, *wordpiece;
    if (size == 0) return 0;
    int use_gpt2 = data[0] % 2 == 0;
    const tokenizer *tok = use_gpt2 ? load_once(&gpt2, AV_FUZZ_GPT2_TOKENIZER_DIR)
                                    : load_once(&wordpiece, AV_FUZZ_WORDPIECE_DIR);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int valid = utf8_validate(text, len) == AV_SUCCESS;
    token_list list;
    av_status status = tokenizer_encode(tok, text, len, &list);
    if (!valid) {
        fuzz_require(status == AV_ERROR_PROMPT, "invalid UTF-8 is refused as a bad prompt");
        return 0;
    }
    fuzz_require(status == AV_SUCCESS, "valid UTF-8 encodes");
    if (len > 0) {
        if (use_gpt2) check_gpt2(tok, &list, text, len);
        else check_wordpiece(&list, len);
        if (memchr(text, 0, len) == NULL) check_viewer_tokens(&list, text, len);
    }
    token_list_free(&list);
    return 0;
}
