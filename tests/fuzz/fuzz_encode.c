// Prompts through the tokenizers: GPT-2's real one (vocab.json and merges.txt of ../shared/data/gpt2-tokenizer) when
// the first byte is even, the Llama 3 layout of tests/data/tok-llama3 (its Split regex, ignore_merges, BOS template)
// when it is 3 mod 4, else the BERT uncased WordPiece of tests/data/wordpiece; the rest is the prompt.
// Properties, beyond not crashing:
//   - invalid UTF-8 fails with AV_ERROR_PROMPT, valid UTF-8 encodes;
//   - GPT-2: the tokens' byte spans tile the prompt in order, and decoding the ids gives the prompt back, byte
//     for byte (byte-level BPE loses nothing);
//   - Llama 3: <|begin_of_text|> first with an empty span at 0, then the same as GPT-2;
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

#if !defined(AV_FUZZ_GPT2_TOKENIZER_DIR) || !defined(AV_FUZZ_WORDPIECE_DIR) || !defined(AV_FUZZ_LLAMA3_TOKENIZER_DIR)
#error "AV_FUZZ_GPT2_TOKENIZER_DIR, AV_FUZZ_WORDPIECE_DIR and AV_FUZZ_LLAMA3_TOKENIZER_DIR name the tokenizers"
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

// The BOS the template adds, then the prompt's own tokens, which must behave as GPT-2's.
static void check_llama3(const tokenizer *tok, const token_list *list, const char *text, size_t len) {
    fuzz_require(list->n >= 1 && list->starts[0] == 0 && list->ends[0] == 0, "the BOS comes first, with an empty span");
    token_list own = {list->ids + 1, list->starts + 1, list->ends + 1, list->display + 1, list->n - 1};
    check_gpt2(tok, &own, text, len);
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

typedef enum which_tokenizer { GPT2, LLAMA3, WORDPIECE } which_tokenizer;

static const tokenizer *tokenizer_for(which_tokenizer which) {
    static tokenizer *loaded[3];
    static const char *const dirs[3] = {AV_FUZZ_GPT2_TOKENIZER_DIR, AV_FUZZ_LLAMA3_TOKENIZER_DIR,
                                        AV_FUZZ_WORDPIECE_DIR};
    return load_once(&loaded[which], dirs[which]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    which_tokenizer which = data[0] % 2 == 0 ? GPT2 : data[0] % 4 == 3 ? LLAMA3 : WORDPIECE;
    const tokenizer *tok = tokenizer_for(which);
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
    // No text at all too: the templates' tokens ([CLS] [SEP], the BOS) stand alone then.
    if (which == GPT2) check_gpt2(tok, &list, text, len);
    else if (which == LLAMA3) check_llama3(tok, &list, text, len);
    else check_wordpiece(&list, len);
    if (memchr(text, 0, len) == NULL) check_viewer_tokens(&list, text, len);
    token_list_free(&list);
    return 0;
}
