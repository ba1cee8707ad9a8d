// Byte-level BPE (GPT-2, Llama 3, Qwen2), exactly as OpenAI's encoder.py and Hugging Face's tokenizers do it:
//   1. split out added (special) tokens such as "<|endoftext|>", longest first,
//   2. normalize each remaining segment (nothing, or NFC for Qwen2),
//   3. pre-tokenize it with a regex (GPT-2's, or the Split pattern a tokenizer.json gives) into pieces,
//   4. map each piece's bytes to the 256 single-byte tokens and apply merges, lowest rank first (or, with
//      ignore_merges, take a piece that is a whole vocab entry as is),
//   5. put the post-processor's template tokens (Llama 3's <|begin_of_text|>) around the prompt's tokens.
// Tokens are handled as ids throughout: a merge is the pair (left id, right id) -> (rank, merged id).
#include "json_read.h"
#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char END_OF_TEXT[] = "<|endoftext|>";

typedef struct merge_slot {
    uint64_t pair; // left id << 32 | right id
    int32_t rank;  // -1: empty slot
    int32_t merged;
} merge_slot;

typedef struct special_token {
    char *content;
    size_t len;
    int32_t id;
    bool normalized; // matched in the normalized text, after the tokens matched in the raw text are cut out
} special_token;

typedef struct id_list {
    int32_t *ids;
    int n;
} id_list;

typedef struct bpe_model {
    int32_t n_ids;           // ids run 0..n_ids-1; ids no entry uses have NULL symbols
    char **symbols;          // (n_ids) the token as vocab.json spells it (bytes mapped to printable characters)
    char **bytes;            // (n_ids) the raw bytes it stands for
    size_t *byte_lens;       // (n_ids)
    int32_t *vocab_slots;    // open addressing over the model's vocab (not added tokens outside it), -1 empty
    size_t vocab_mask;
    merge_slot *merge_slots; // open addressing over pairs
    size_t merge_mask;
    int32_t byte_ids[256];   // the single-byte token of each byte
    special_token *specials;
    int n_specials;
    pcre2_code *pattern;
    bool nfc;                // normalizer NFC
    bool ignore_merges;      // a piece that is a whole vocab entry is that token
    id_list before, after;   // the post-processor's tokens around the prompt's (Llama 3's BOS)
} bpe_model;

// ---- GPT-2's byte <-> printable character map ----

// Printable Latin-1 bytes stand for themselves; the other 68 bytes map, in order, to U+0100 and up, so that every
// token is a printable string without spaces (space is 'Ġ' U+0120, newline 'Ċ' U+010A).
static bool is_printable_byte(int byte) {
    return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

static uint32_t byte_to_codepoint(int byte) {
    if (is_printable_byte(byte)) return (uint32_t)byte;
    int rank = 0;
    for (int b = 0; b < byte; b++) rank += !is_printable_byte(b);
    return 256u + (uint32_t)rank;
}

// The map's characters end at U+0143 (256 + the 68 remapped bytes).
#define BYTE_MAP_CODEPOINTS 324

// Inverse of byte_to_codepoint: -1 for characters that no byte maps to.
static void build_codepoint_to_byte(int table[BYTE_MAP_CODEPOINTS]) {
    for (int i = 0; i < BYTE_MAP_CODEPOINTS; i++) table[i] = -1;
    for (int b = 0; b < 256; b++) table[byte_to_codepoint(b)] = b;
}

static size_t encode_utf8(uint32_t code, char *out) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    out[0] = (char)(0xC0 | (code >> 6));
    out[1] = (char)(0x80 | (code & 0x3F));
    return 2; // the map never goes beyond U+0143
}

static uint32_t decode_utf8(const unsigned char *s, int len) {
    if (len == 1) return s[0];
    uint32_t code = s[0] & (0xFF >> (len + 1));
    for (int i = 1; i < len; i++) code = (code << 6) | (s[i] & 0x3F);
    return code;
}

// ---- hash tables ----

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_pair(uint64_t pair) {
    pair ^= pair >> 33;
    pair *= 0xff51afd7ed558ccdull;
    pair ^= pair >> 33;
    return pair;
}

static size_t table_capacity(size_t count) {
    size_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    return capacity;
}

static int32_t vocab_find(const bpe_model *m, const char *symbol, size_t len) {
    for (size_t i = hash_bytes(symbol, len) & m->vocab_mask;; i = (i + 1) & m->vocab_mask) {
        int32_t id = m->vocab_slots[i];
        if (id < 0) return -1;
        if (strlen(m->symbols[id]) == len && !memcmp(m->symbols[id], symbol, len)) return id;
    }
}

static const merge_slot *merge_find(const bpe_model *m, int32_t left, int32_t right) {
    uint64_t pair = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = hash_pair(pair) & m->merge_mask;; i = (i + 1) & m->merge_mask) {
        const merge_slot *slot = &m->merge_slots[i];
        if (slot->rank < 0 || slot->pair == pair) return slot->rank < 0 ? NULL : slot;
    }
}

// ---- model lifetime ----

static void bpe_model_free(bpe_model *m) {
    if (!m) return;
    for (int32_t id = 0; id < m->n_ids; id++) {
        if (m->symbols) free(m->symbols[id]);
        if (m->bytes) free(m->bytes[id]);
    }
    free(m->symbols);
    free(m->bytes);
    free(m->byte_lens);
    free(m->vocab_slots);
    free(m->merge_slots);
    for (int i = 0; i < m->n_specials; i++) free(m->specials[i].content);
    free(m->specials);
    pcre2_code_free(m->pattern);
    free(m->before.ids);
    free(m->after.ids);
    free(m);
}

static char *copy_string(const char *s, size_t len, const char *what) {
    char *copy = av_malloc(len + 1, what);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

// Real vocabularies stay far below this; the bound keeps a corrupt id from sizing the id table.
#define MAX_TOKEN_ID (1 << 24)

static av_status read_token_id(const cJSON *value, const char *path, const char *where, const char *token,
                               int32_t *id) {
    if (!cJSON_IsNumber(value) || value->valuedouble < 0 || value->valuedouble >= MAX_TOKEN_ID ||
        value->valuedouble != (double)(int32_t)value->valuedouble)
        return av_fail(AV_ERROR_FORMAT, "%s: %s: token \"%s\" has no valid id", path, where, token);
    *id = (int32_t)value->valuedouble;
    return AV_SUCCESS;
}

// The ids table covers every id in VOCAB and in ADDED (a tokenizer.json may add tokens beyond the vocab).
static av_status allocate_ids(bpe_model *m, const cJSON *vocab, const cJSON *added, const char *path) {
    int32_t max_id = -1;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vocab) {
        int32_t id = -1;
        AV_TRY(read_token_id(entry, path, "vocab", entry->string, &id));
        if (id > max_id) max_id = id;
    }
    cJSON_ArrayForEach(entry, added) {
        int32_t id = -1;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(entry, "content");
        AV_TRY(read_token_id(cJSON_GetObjectItemCaseSensitive(entry, "id"), path, "added_tokens",
                             cJSON_IsString(content) ? content->valuestring : "?", &id));
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return av_fail(AV_ERROR_FORMAT, "%s: the vocabulary is empty", path);
    m->n_ids = max_id + 1;
    m->symbols = av_calloc((size_t)m->n_ids, sizeof *m->symbols, "BPE symbols");
    m->bytes = av_calloc((size_t)m->n_ids, sizeof *m->bytes, "BPE token bytes");
    m->byte_lens = av_calloc((size_t)m->n_ids, sizeof *m->byte_lens, "BPE token lengths");
    if (!m->symbols || !m->bytes || !m->byte_lens) return AV_ERROR_OUT_OF_MEMORY;
    return AV_SUCCESS;
}

// Names ID without entering it in the vocab table: an added token outside the model's vocab is not the model's, so
// neither a merge nor ignore_merges may find it (as in Hugging Face's BPE).
static av_status set_symbol(bpe_model *m, const char *symbol, int32_t id, const char *path) {
    size_t len = strlen(symbol);
    if (m->symbols[id])
        return av_fail(AV_ERROR_FORMAT, "%s: id %d is given to both \"%s\" and \"%s\"", path, id, m->symbols[id],
                       symbol);
    if (vocab_find(m, symbol, len) >= 0)
        return av_fail(AV_ERROR_FORMAT, "%s: token \"%s\" is listed twice", path, symbol);
    m->symbols[id] = copy_string(symbol, len, "BPE symbol");
    return m->symbols[id] ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
}

static av_status insert_symbol(bpe_model *m, const char *symbol, int32_t id, const char *path) {
    AV_TRY(set_symbol(m, symbol, id, path));
    size_t len = strlen(symbol);
    size_t i = hash_bytes(symbol, len) & m->vocab_mask;
    while (m->vocab_slots[i] >= 0) i = (i + 1) & m->vocab_mask;
    m->vocab_slots[i] = id;
    return AV_SUCCESS;
}

static av_status load_vocab(bpe_model *m, const cJSON *vocab, const char *path) {
    if (!cJSON_IsObject(vocab)) return av_fail(AV_ERROR_FORMAT, "%s: the vocabulary is not a JSON object", path);
    size_t capacity = table_capacity((size_t)cJSON_GetArraySize(vocab));
    m->vocab_slots = av_malloc(capacity * sizeof *m->vocab_slots, "BPE vocab table");
    if (!m->vocab_slots) return AV_ERROR_OUT_OF_MEMORY;
    memset(m->vocab_slots, 0xFF, capacity * sizeof *m->vocab_slots);
    m->vocab_mask = capacity - 1;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vocab) AV_TRY(insert_symbol(m, entry->string, (int32_t)entry->valuedouble, path));
    return AV_SUCCESS;
}

static av_status add_special(bpe_model *m, const char *content, int32_t id, bool normalized) {
    special_token *grown = realloc(m->specials, (size_t)(m->n_specials + 1) * sizeof *grown);
    if (!grown) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory adding special token %s", content);
    m->specials = grown;
    special_token *s = &m->specials[m->n_specials];
    s->len = strlen(content);
    s->id = id;
    s->normalized = normalized;
    s->content = copy_string(content, s->len, "special token");
    if (!s->content) return AV_ERROR_OUT_OF_MEMORY;
    m->n_specials++;
    // A special token decodes to its text verbatim, not through the byte map.
    free(m->bytes[id]);
    m->bytes[id] = copy_string(content, s->len, "special token bytes");
    m->byte_lens[id] = s->len;
    return m->bytes[id] ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
}

// Stripping the whitespace around an added token or matching it only as a whole word would change the ids.
static av_status check_added_token_options(const cJSON *entry, const char *path, const char *where) {
    static const char *const keys[] = {"lstrip", "rstrip", "single_word"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        bool set;
        AV_TRY(json_optional_bool(entry, keys[i], false, &set, path, where));
        if (set) return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: %s true is not supported", path, where, keys[i]);
    }
    return AV_SUCCESS;
}

static av_status load_added_tokens(bpe_model *m, const cJSON *added, const char *path) {
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return av_fail(AV_ERROR_FORMAT, "%s: added_tokens is not an array", path);
    const cJSON *entry;
    int index = 0;
    cJSON_ArrayForEach(entry, added) {
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%d]", index);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(entry, "content");
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return av_fail(AV_ERROR_FORMAT, "%s: %s has no content", path, where);
        AV_TRY(check_added_token_options(entry, path, where));
        // Hugging Face's AddedToken default: special tokens match the raw text, others the normalized text.
        bool normalized, special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(entry, "special"));
        AV_TRY(json_optional_bool(entry, "normalized", !special, &normalized, path, where));
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(entry, "id")->valuedouble;
        if (!m->symbols[id]) AV_TRY(set_symbol(m, content->valuestring, id, path));
        else if (strcmp(m->symbols[id], content->valuestring))
            return av_fail(AV_ERROR_FORMAT, "%s: %s \"%s\" has id %d, which the vocab gives to \"%s\"", path, where,
                           content->valuestring, id, m->symbols[id]);
        AV_TRY(add_special(m, content->valuestring, id, normalized));
        index++;
    }
    return AV_SUCCESS;
}

static av_status symbol_to_bytes(bpe_model *m, int32_t id, const int codepoint_to_byte[BYTE_MAP_CODEPOINTS],
                                 const char *path) {
    const char *symbol = m->symbols[id];
    size_t len = strlen(symbol);
    char *out = av_malloc(len + 1, "BPE token bytes");
    if (!out) return AV_ERROR_OUT_OF_MEMORY;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int step = utf8_char_length(symbol + i, len - i);
        uint32_t code = step ? decode_utf8((const unsigned char *)symbol + i, step) : BYTE_MAP_CODEPOINTS;
        int byte = code < BYTE_MAP_CODEPOINTS ? codepoint_to_byte[code] : -1;
        if (byte < 0) {
            free(out);
            return av_fail(AV_ERROR_UNSUPPORTED, "%s: token \"%s\" (id %d) is not in GPT-2's byte-level alphabet",
                           path, symbol, id);
        }
        out[n++] = (char)byte;
        i += (size_t)step;
    }
    m->bytes[id] = out;
    m->byte_lens[id] = n;
    return AV_SUCCESS;
}

static av_status derive_token_bytes(bpe_model *m, const char *path) {
    int codepoint_to_byte[BYTE_MAP_CODEPOINTS];
    build_codepoint_to_byte(codepoint_to_byte);
    for (int32_t id = 0; id < m->n_ids; id++)
        if (m->symbols[id] && !m->bytes[id]) AV_TRY(symbol_to_bytes(m, id, codepoint_to_byte, path));
    for (int b = 0; b < 256; b++) {
        char symbol[2];
        size_t len = encode_utf8(byte_to_codepoint(b), symbol);
        m->byte_ids[b] = vocab_find(m, symbol, len);
        if (m->byte_ids[b] < 0)
            return av_fail(AV_ERROR_FORMAT, "%s: the vocab lacks the single-byte token for byte 0x%02X", path, b);
    }
    return AV_SUCCESS;
}

static av_status allocate_merges(bpe_model *m, size_t count) {
    size_t capacity = table_capacity(count);
    m->merge_slots = av_malloc(capacity * sizeof *m->merge_slots, "BPE merge table");
    if (!m->merge_slots) return AV_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < capacity; i++) m->merge_slots[i].rank = -1;
    m->merge_mask = capacity - 1;
    return AV_SUCCESS;
}

// WHERE names the merge for messages ("merges.txt line 7", "tokenizer.json: model.merges[5]").
static av_status add_merge(bpe_model *m, const char *left, size_t left_len, const char *right, size_t right_len,
                           int32_t rank, const char *where) {
    if (left_len == 0 || right_len == 0) return av_fail(AV_ERROR_FORMAT, "%s: empty token in merge", where);
    int32_t left_id = vocab_find(m, left, left_len);
    int32_t right_id = vocab_find(m, right, right_len);
    char merged[512];
    if (left_len + right_len >= sizeof merged)
        return av_fail(AV_ERROR_FORMAT, "%s: merge longer than %zu bytes", where, sizeof merged - 1);
    memcpy(merged, left, left_len);
    memcpy(merged + left_len, right, right_len);
    int32_t merged_id = vocab_find(m, merged, left_len + right_len);
    if (left_id < 0 || right_id < 0 || merged_id < 0)
        return av_fail(AV_ERROR_FORMAT, "%s: merge \"%.*s %.*s\" names a token not in the vocab", where,
                       (int)left_len, left, (int)right_len, right);
    uint64_t pair = (uint64_t)(uint32_t)left_id << 32 | (uint32_t)right_id;
    size_t i = hash_pair(pair) & m->merge_mask;
    while (m->merge_slots[i].rank >= 0) {
        if (m->merge_slots[i].pair == pair) return AV_SUCCESS; // a repeated merge keeps its first, lower rank
        i = (i + 1) & m->merge_mask;
    }
    m->merge_slots[i] = (merge_slot){pair, rank, merged_id};
    return AV_SUCCESS;
}

// Both on-disk merge forms are "left right" with exactly one space (byte-level tokens never contain one).
static av_status add_merge_line(bpe_model *m, const char *line, size_t len, int32_t rank, const char *where) {
    const char *space = memchr(line, ' ', len);
    if (!space || memchr(space + 1, ' ', len - (size_t)(space + 1 - line)))
        return av_fail(AV_ERROR_FORMAT, "%s: expected two tokens separated by one space, got \"%.*s\"", where,
                       (int)(len > 80 ? 80 : len), line);
    return add_merge(m, line, (size_t)(space - line), space + 1, len - (size_t)(space + 1 - line), rank, where);
}

static av_status load_merges_txt(bpe_model *m, const char *path) {
    char *data;
    size_t len;
    AV_TRY(av_read_file(path, &data, &len));
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    av_status status = allocate_merges(m, lines);
    int32_t rank = 0;
    int line_number = 0;
    for (char *line = data; status == AV_SUCCESS && line < data + len;) {
        char *newline = memchr(line, '\n', (size_t)(data + len - line));
        char *end = newline ? newline : data + len;
        size_t line_len = (size_t)(end - line);
        if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
        line_number++;
        bool header = line_number == 1 && line_len >= 8 && !memcmp(line, "#version", 8);
        if (!header && line_len > 0) {
            char where[64 + 4096];
            snprintf(where, sizeof where, "%s line %d", path, line_number);
            status = add_merge_line(m, line, line_len, rank++, where);
        }
        line = end + 1;
    }
    free(data);
    return status;
}

static av_status load_merges_json(bpe_model *m, const cJSON *merges, const char *path) {
    if (!cJSON_IsArray(merges)) return av_fail(AV_ERROR_FORMAT, "%s: model.merges is not an array", path);
    AV_TRY(allocate_merges(m, (size_t)cJSON_GetArraySize(merges)));
    int32_t rank = 0;
    const cJSON *merge;
    cJSON_ArrayForEach(merge, merges) {
        char where[64 + 4096];
        snprintf(where, sizeof where, "%s: model.merges[%d]", path, rank);
        const cJSON *left = cJSON_GetArrayItem(merge, 0), *right = cJSON_GetArrayItem(merge, 1);
        if (cJSON_IsString(merge))
            AV_TRY(add_merge_line(m, merge->valuestring, strlen(merge->valuestring), rank, where));
        else if (cJSON_IsArray(merge) && cJSON_GetArraySize(merge) == 2 && cJSON_IsString(left) &&
                 cJSON_IsString(right))
            AV_TRY(add_merge(m, left->valuestring, strlen(left->valuestring), right->valuestring,
                             strlen(right->valuestring), rank, where));
        else
            return av_fail(AV_ERROR_FORMAT, "%s: neither a \"left right\" string nor a [left, right] pair", where);
        rank++;
    }
    return AV_SUCCESS;
}

// WHERE names the pattern in messages; a tokenizer.json pattern PCRE2 cannot compile is a format error.
static av_status compile_pattern(bpe_model *m, const char *pattern, const char *path, const char *where) {
    int error;
    PCRE2_SIZE offset;
    m->pattern = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &error, &offset,
                               NULL);
    if (!m->pattern) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        return av_fail(AV_ERROR_FORMAT, "%s: %s: %s at offset %zu", path, where, (char *)message, offset);
    }
    // JIT is only a speed-up: without it (a PCRE2 built without JIT) pcre2_match interprets the same pattern.
    pcre2_jit_compile(m->pattern, PCRE2_JIT_COMPLETE);
    return AV_SUCCESS;
}

// ---- normalization ----

// A segment of the prompt as the pre-tokenizer sees it (after the normalizer) and where its bytes came from.
typedef struct segment_text {
    const char *bytes;
    size_t len;
    int64_t base;      // the prompt offset of the segment
    int64_t *start_of; // (len) NULL while the bytes are the prompt's; else the prompt offset of a token starting at i
    int64_t *end_of;   // (len + 1) the prompt offset of a token ending at i
} segment_text;

static int64_t prompt_start(const segment_text *seg, size_t at) {
    return seg->start_of ? seg->start_of[at] : seg->base + (int64_t)at;
}

static int64_t prompt_end(const segment_text *seg, size_t at) {
    return seg->end_of ? seg->end_of[at] : seg->base + (int64_t)at;
}

static av_status nfc(const char *text, size_t len, char **out, size_t *out_len) {
    utf8proc_uint8_t *result = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &result,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) return av_fail(AV_ERROR_OUT_OF_MEMORY, "NFC normalization: %s", utf8proc_errmsg(n));
    *out = (char *)result;
    *out_len = (size_t)n;
    return AV_SUCCESS;
}

// One past the marks that follow the character at AT: the next character of canonical combining class 0.
static size_t chunk_end(const char *text, size_t at, size_t len) {
    size_t i = at + (size_t)utf8_char_length(text + at, len - at);
    while (i < len) {
        utf8proc_int32_t code;
        utf8proc_ssize_t step =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &code);
        if (utf8proc_get_property(code)->combining_class == 0) break;
        i += (size_t)step;
    }
    return i;
}

// The length of TEXT's NFC when that is how the LEFT bytes of WHOLE begin, else 0; *SAME: the NFC is TEXT itself.
static av_status fit_nfc(const char *text, size_t len, const char *whole, size_t left, size_t *fit, bool *same) {
    char *normalized = NULL;
    size_t normalized_len = 0;
    AV_TRY(nfc(text, len, &normalized, &normalized_len));
    *fit = normalized_len <= left && !memcmp(whole, normalized, normalized_len) ? normalized_len : 0;
    *same = normalized_len == len && !memcmp(normalized, text, len);
    free(normalized);
    return AV_SUCCESS;
}

// Traces the bytes of WHOLE (the segment's NFC) to the segment chunk by chunk, a chunk being a character of class 0
// and the marks after it: a chunk that NFC leaves alone maps byte to byte, one it changes maps whole. A chunk whose
// NFC is not the next bytes of WHOLE composes with the next one (Hangul jamo do) and takes it in. *TRACED is false
// when even the rest of the segment does not fit.
static av_status trace_chunks(segment_text *seg, const char *whole, size_t whole_len, bool *traced) {
    size_t done = 0;
    *traced = false;
    for (size_t at = 0; at < seg->len;) {
        size_t end = at, fit = 0;
        bool same = false;
        while (fit == 0 && end < seg->len) {
            end = chunk_end(seg->bytes, end, seg->len);
            AV_TRY(fit_nfc(seg->bytes + at, end - at, whole + done, whole_len - done, &fit, &same));
        }
        if (fit == 0) return AV_SUCCESS;
        for (size_t i = 0; i < fit; i++) {
            seg->start_of[done + i] = seg->base + (int64_t)(same ? at + i : at);
            seg->end_of[done + i + 1] = seg->base + (int64_t)(same ? at + i + 1 : end);
        }
        done += fit;
        at = end;
    }
    *traced = done == whole_len;
    return AV_SUCCESS;
}

// Replaces the segment's text by its NFC (*OWNED, malloc'ed); tokens of text that NFC changed span the original
// characters they came from.
static av_status normalize_nfc(segment_text *seg, char **owned) {
    size_t len = 0;
    AV_TRY(nfc(seg->bytes, seg->len, owned, &len));
    if (len == seg->len && !memcmp(*owned, seg->bytes, len)) return AV_SUCCESS; // most prompts are NFC already
    seg->start_of = av_malloc(len * sizeof *seg->start_of, "NFC offsets");
    seg->end_of = av_malloc((len + 1) * sizeof *seg->end_of, "NFC offsets");
    if (!seg->start_of || !seg->end_of) return AV_ERROR_OUT_OF_MEMORY;
    seg->end_of[0] = seg->base;
    bool traced;
    AV_TRY(trace_chunks(seg, *owned, len, &traced));
    for (size_t i = 0; !traced && i < len; i++) {
        seg->start_of[i] = seg->base;
        seg->end_of[i + 1] = seg->base + (int64_t)seg->len;
    }
    seg->bytes = *owned;
    seg->len = len;
    return AV_SUCCESS;
}

// ---- encoding ----

static av_status push_token(const bpe_model *m, int32_t id, int64_t start, int64_t end, token_list *out) {
    char *display = token_display_string(m->bytes[id], m->byte_lens[id]);
    if (!display) return AV_ERROR_OUT_OF_MEMORY;
    av_status status = token_list_push(out, id, start, end, display);
    free(display);
    return status;
}

// Working arrays for one piece, sized for the longest piece: symbol ids, their byte offsets in the piece, and the
// piece spelled in the byte map (2 bytes a byte at most).
typedef struct piece_work {
    int32_t *ids;
    int64_t *starts;
    char *symbol;
} piece_work;

// The model's vocab entry that is the whole piece, or -1 (ignore_merges).
static int32_t whole_piece_id(const bpe_model *m, const unsigned char *piece, size_t len, char *symbol) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const char *byte_symbol = m->symbols[m->byte_ids[piece[i]]];
        size_t byte_len = strlen(byte_symbol);
        memcpy(symbol + n, byte_symbol, byte_len);
        n += byte_len;
    }
    return vocab_find(m, symbol, n);
}

// Applies merges to the N single-byte symbols of WORK as encoder.py's bpe() does: merge every occurrence of the
// lowest-ranked adjacent pair, left to right, until no adjacent pair has a rank. Returns the symbols left.
static size_t apply_merges(const bpe_model *m, piece_work *work, size_t n) {
    int32_t *ids = work->ids;
    int64_t *starts = work->starts;
    while (n >= 2) {
        const merge_slot *best = NULL;
        for (size_t i = 0; i + 1 < n; i++) {
            const merge_slot *slot = merge_find(m, ids[i], ids[i + 1]);
            if (slot && (!best || slot->rank < best->rank)) best = slot;
        }
        if (!best) break;
        int32_t left = (int32_t)(best->pair >> 32), right = (int32_t)(uint32_t)best->pair;
        size_t kept = 0;
        for (size_t i = 0; i < n; kept++) {
            starts[kept] = starts[i];
            if (i + 1 < n && ids[i] == left && ids[i + 1] == right) {
                ids[kept] = best->merged;
                i += 2;
            } else {
                ids[kept] = ids[i];
                i++;
            }
        }
        n = kept;
    }
    return n;
}

// Encodes the piece SEG->bytes[at, at + len).
static av_status encode_piece(const bpe_model *m, const segment_text *seg, size_t at, size_t len, piece_work *work,
                              token_list *out) {
    const unsigned char *piece = (const unsigned char *)seg->bytes + at;
    if (m->ignore_merges) {
        int32_t id = whole_piece_id(m, piece, len, work->symbol);
        if (id >= 0) return push_token(m, id, prompt_start(seg, at), prompt_end(seg, at + len), out);
    }
    for (size_t i = 0; i < len; i++) {
        work->ids[i] = m->byte_ids[piece[i]];
        work->starts[i] = (int64_t)i;
    }
    size_t n = apply_merges(m, work, len);
    for (size_t i = 0; i < n; i++) {
        size_t start = at + (size_t)work->starts[i], end = i + 1 < n ? at + (size_t)work->starts[i + 1] : at + len;
        AV_TRY(push_token(m, work->ids[i], prompt_start(seg, start), prompt_end(seg, end), out));
    }
    return AV_SUCCESS;
}

// PCRE2's match limit hit by a pathological prompt, or a match that ends before it starts (\K in a lookahead).
static av_status regex_failure(const segment_text *seg, size_t at, int rc) {
    PCRE2_UCHAR message[256] = "a match ends before it starts";
    if (rc < 0) pcre2_get_error_message(rc, message, sizeof message);
    return av_fail(AV_ERROR_PROMPT, "prompt: the pre-tokenizer regex failed at byte %lld: %s",
                   (long long)prompt_start(seg, at), (char *)message);
}

// Hugging Face's Split with behavior Isolated (ByteLevel's own regex splits the same way): each match is a piece,
// and so is the text between matches; an empty match only splits the text around it. The segment is matched on its
// own, as Hugging Face does after cutting out added tokens, so that \s+(?!\S) does not look past one.
static av_status pre_tokenize(const bpe_model *m, const segment_text *seg, pcre2_match_data *match, piece_work *work,
                              token_list *out) {
    size_t done = 0; // the end of the last piece
    for (size_t at = 0; at < seg->len;) {
        int rc = pcre2_match(m->pattern, (PCRE2_SPTR)seg->bytes, seg->len, at, PCRE2_NO_UTF_CHECK, match, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        PCRE2_SIZE *span = pcre2_get_ovector_pointer(match);
        if (rc < 0 || span[1] < span[0]) return regex_failure(seg, at, rc);
        if (span[0] > done) AV_TRY(encode_piece(m, seg, done, span[0] - done, work, out));
        if (span[1] > span[0]) AV_TRY(encode_piece(m, seg, span[0], span[1] - span[0], work, out));
        done = span[1];
        at = span[1] > span[0] || span[1] == seg->len
                 ? span[1]
                 : span[1] + (size_t)utf8_char_length(seg->bytes + span[1], seg->len - span[1]);
    }
    if (done < seg->len) AV_TRY(encode_piece(m, seg, done, seg->len - done, work, out));
    return AV_SUCCESS;
}

static av_status encode_normalized(const bpe_model *m, const segment_text *seg, token_list *out) {
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(m->pattern, NULL);
    piece_work work = {av_malloc(seg->len * sizeof *work.ids, "BPE piece ids"),
                       av_malloc(seg->len * sizeof *work.starts, "BPE piece offsets"),
                       av_malloc(2 * seg->len, "BPE piece symbol")};
    av_status status = AV_ERROR_OUT_OF_MEMORY;
    if (!match) av_fail(status, "out of memory allocating PCRE2 match data");
    else if (work.ids && work.starts && work.symbol) status = pre_tokenize(m, seg, match, &work, out);
    pcre2_match_data_free(match);
    free(work.ids);
    free(work.starts);
    free(work.symbol);
    return status;
}

static av_status encode_segment(const bpe_model *m, const char *text, size_t start, size_t end, token_list *out) {
    segment_text seg = {text + start, end - start, (int64_t)start, NULL, NULL};
    char *normalized = NULL;
    av_status status = m->nfc ? normalize_nfc(&seg, &normalized) : AV_SUCCESS;
    if (status == AV_SUCCESS) status = encode_normalized(m, &seg, out);
    free(normalized);
    free(seg.start_of);
    free(seg.end_of);
    return status;
}

// The longest added token of the given kind starting at TEXT, or NULL.
static const special_token *special_at(const bpe_model *m, const char *text, size_t len, bool normalized) {
    const special_token *found = NULL;
    for (int i = 0; i < m->n_specials; i++) {
        const special_token *s = &m->specials[i];
        bool matches = s->normalized == normalized && s->content[0] == text[0] && s->len <= len &&
                       !memcmp(text, s->content, s->len);
        if (matches && (!found || s->len > found->len)) found = s;
    }
    return found;
}

static av_status encode_text(const bpe_model *m, const char *text, size_t start, size_t end, bool normalized,
                             token_list *out);

// The text between added tokens goes to the second pass, or after it to the normalizer and pre-tokenizer.
static av_status encode_between(const bpe_model *m, const char *text, size_t start, size_t end, bool normalized,
                                token_list *out) {
    if (start == end) return AV_SUCCESS;
    return normalized ? encode_segment(m, text, start, end, out) : encode_text(m, text, start, end, true, out);
}

// Added tokens in the prompt text (GPT-2's "<|endoftext|>", id 50256) are encoded as the token, not as the 13
// characters, the way Hugging Face's tokenizer does; the token's span covers those 13 bytes. As there, the tokens
// matched in the raw text are cut out first, then, from the text between them, those matched in the normalized text
// (the same text here: the loader refuses such tokens when there is a normalizer).
static av_status encode_text(const bpe_model *m, const char *text, size_t start, size_t end, bool normalized,
                             token_list *out) {
    size_t segment_start = start;
    for (size_t i = start; i < end;) {
        const special_token *special = special_at(m, text + i, end - i, normalized);
        if (!special) {
            i++;
            continue;
        }
        AV_TRY(encode_between(m, text, segment_start, i, normalized, out));
        AV_TRY(push_token(m, special->id, (int64_t)i, (int64_t)(i + special->len), out));
        i += special->len;
        segment_start = i;
    }
    return encode_between(m, text, segment_start, end, normalized, out);
}

// Hugging Face gives the template's tokens the empty span (0, 0), on either side of the prompt.
static av_status push_template(const bpe_model *m, const id_list *list, token_list *out) {
    for (int i = 0; i < list->n; i++) AV_TRY(push_token(m, list->ids[i], 0, 0, out));
    return AV_SUCCESS;
}

static av_status bpe_encode(const tokenizer *tok, const char *text, size_t len, token_list *out) {
    const bpe_model *m = tok->impl;
    // PCRE2 is told not to re-check UTF-8 (it would rescan the rest of the text on every match).
    AV_TRY(utf8_validate(text, len));
    AV_TRY(push_template(m, &m->before, out));
    AV_TRY(encode_text(m, text, 0, len, false, out));
    return push_template(m, &m->after, out);
}

static av_status bpe_decode(const tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len) {
    const bpe_model *m = tok->impl;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->n_ids || !m->bytes[ids[i]])
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "decode: token id %d at position %d is not in the vocab", ids[i],
                           i);
        total += m->byte_lens[ids[i]];
    }
    char *out = av_malloc(total + 1, "decoded text");
    if (!out) return AV_ERROR_OUT_OF_MEMORY;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(out + at, m->bytes[ids[i]], m->byte_lens[ids[i]]);
        at += m->byte_lens[ids[i]];
    }
    out[at] = '\0';
    *text = out;
    *len = at;
    return AV_SUCCESS;
}

static void bpe_destroy(tokenizer *tok) {
    if (!tok) return;
    bpe_model_free(tok->impl);
    free(tok);
}

// ---- loaders ----

static av_status wrap_model(tokenizer **out, bpe_model *m) {
    tokenizer *tok = av_calloc(1, sizeof *tok, "tokenizer");
    if (!tok) return AV_ERROR_OUT_OF_MEMORY;
    *tok = (tokenizer){"byte-level-bpe", bpe_encode, bpe_decode, bpe_destroy, m};
    *out = tok;
    return AV_SUCCESS;
}

static av_status build_from_files(bpe_model *m, const cJSON *vocab, const char *vocab_json, const char *merges_txt) {
    AV_TRY(allocate_ids(m, vocab, NULL, vocab_json));
    AV_TRY(load_vocab(m, vocab, vocab_json));
    // vocab.json has no added-token list; GPT-2's only special token is <|endoftext|>.
    int32_t end_of_text = vocab_find(m, END_OF_TEXT, strlen(END_OF_TEXT));
    if (end_of_text >= 0) AV_TRY(add_special(m, END_OF_TEXT, end_of_text, false));
    AV_TRY(derive_token_bytes(m, vocab_json));
    AV_TRY(load_merges_txt(m, merges_txt));
    return compile_pattern(m, GPT2_PATTERN, vocab_json, "GPT-2's pre-tokenizer regex");
}

av_status bpe_tokenizer_load_files(tokenizer **out, const char *vocab_json, const char *merges_txt) {
    if (!out || !vocab_json || !merges_txt) return av_fail(AV_ERROR_INVALID_ARGUMENT, "bpe_tokenizer_load_files: NULL");
    *out = NULL;
    cJSON *vocab;
    AV_TRY(tokenizer_parse_json_file(vocab_json, &vocab));
    bpe_model *m = av_calloc(1, sizeof *m, "BPE model");
    av_status status = m ? build_from_files(m, vocab, vocab_json, merges_txt) : AV_ERROR_OUT_OF_MEMORY;
    cJSON_Delete(vocab);
    if (status == AV_SUCCESS) status = wrap_model(out, m);
    if (status != AV_SUCCESS) bpe_model_free(m);
    return status;
}

// ---- tokenizer.json's pipeline: each part is one this file implements exactly, or refused, as another would
// silently give different ids ----

static const char *type_name(const cJSON *component) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(component, "type");
    return cJSON_IsString(type) ? type->valuestring : "(no type)";
}

static bool has_type(const cJSON *component, const char *type) { return !strcmp(type_name(component), type); }

static bool is_absent(const cJSON *component) { return !component || cJSON_IsNull(component); }

// What a component is, for messages: null, its type, or a Sequence's steps ("Sequence [Split, ByteLevel]").
static void describe(const cJSON *component, const char *steps_key, char *out, size_t size) {
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(component, steps_key);
    size_t n = (size_t)snprintf(out, size, "%.64s", is_absent(component) ? "null" : type_name(component));
    if (!has_type(component, "Sequence") || !cJSON_IsArray(steps)) return;
    const cJSON *step;
    cJSON_ArrayForEach(step, steps) {
        if (n < size) n += (size_t)snprintf(out + n, size - n, "%s%.64s", step == steps->child ? " [" : ", ",
                                            type_name(step));
    }
    if (n < size) snprintf(out + n, size - n, "]");
}

// The options of Hugging Face's BPE model that would change the ids; ignore_merges is implemented.
static av_status load_model_options(bpe_model *m, const cJSON *model, const char *path) {
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (size_t i = 0; i < sizeof affixes / sizeof *affixes; i++) {
        const cJSON *affix = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (!is_absent(affix) && !(cJSON_IsString(affix) && !affix->valuestring[0]))
            return av_fail(AV_ERROR_UNSUPPORTED, "%s: model.%s \"%.64s\" is not supported (null or \"\")", path,
                           affixes[i], cJSON_IsString(affix) ? affix->valuestring : "(not a string)");
    }
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (!is_absent(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: model.dropout is set; BPE dropout is not supported", path);
    bool byte_fallback;
    AV_TRY(json_optional_bool(model, "byte_fallback", false, &byte_fallback, path, "model"));
    if (byte_fallback) return av_fail(AV_ERROR_UNSUPPORTED, "%s: model.byte_fallback true is not supported", path);
    return json_optional_bool(model, "ignore_merges", false, &m->ignore_merges, path, "model");
}

static av_status load_normalizer(bpe_model *m, const cJSON *root, const char *path) {
    const cJSON *normalizer = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    m->nfc = has_type(normalizer, "NFC");
    if (!is_absent(normalizer) && !m->nfc) {
        char found[256];
        describe(normalizer, "normalizers", found, sizeof found);
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: normalizer %s is not supported (null or NFC)", path, found);
    }
    for (int i = 0; m->nfc && i < m->n_specials; i++)
        if (m->specials[i].normalized)
            return av_fail(AV_ERROR_UNSUPPORTED, "%s: added token \"%s\" has normalized true, which is not supported "
                                                 "with the NFC normalizer", path, m->specials[i].content);
    return AV_SUCCESS;
}

// ByteLevel as a pre-tokenizer: USE_REGEX is whether it splits with GPT-2's regex itself (alone) or not (after a
// Split).
static av_status check_byte_level(const cJSON *byte_level, bool use_regex, const char *path, const char *where) {
    bool prefix, regex;
    AV_TRY(json_optional_bool(byte_level, "add_prefix_space", false, &prefix, path, where));
    AV_TRY(json_optional_bool(byte_level, "use_regex", true, &regex, path, where));
    if (prefix) return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: ByteLevel add_prefix_space true is not supported", path,
                               where);
    if (regex != use_regex)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: ByteLevel use_regex %s is not supported %s", path, where,
                       regex ? "true" : "false", use_regex ? "on its own" : "after a Split");
    return AV_SUCCESS;
}

// The regex of a Split that isolates each match, as Llama 3's and Qwen2's pre-tokenizers begin.
static av_status read_split(const cJSON *split, const char **pattern, const char *path) {
    const char *where = "pre_tokenizer.pretokenizers[0]";
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
    const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(split, "behavior");
    bool invert;
    AV_TRY(json_optional_bool(split, "invert", false, &invert, path, where));
    if (!cJSON_IsString(regex))
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: Split pattern is not {\"Regex\": ...}", path, where);
    if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated"))
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: Split behavior %.64s is not supported (Isolated)", path, where,
                       cJSON_IsString(behavior) ? behavior->valuestring : "(not a string)");
    if (invert) return av_fail(AV_ERROR_UNSUPPORTED, "%s: %s: Split invert true is not supported", path, where);
    *pattern = regex->valuestring;
    return AV_SUCCESS;
}

// GPT-2's ByteLevel (its regex, then the byte map) or Llama 3's and Qwen2's Sequence [Split, ByteLevel].
static av_status load_pre_tokenizer(bpe_model *m, const cJSON *root, const char *path) {
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    if (has_type(pre, "ByteLevel")) {
        AV_TRY(check_byte_level(pre, true, path, "pre_tokenizer"));
        return compile_pattern(m, GPT2_PATTERN, path, "GPT-2's pre-tokenizer regex");
    }
    if (has_type(pre, "Sequence") && cJSON_IsArray(steps) && cJSON_GetArraySize(steps) == 2 &&
        has_type(cJSON_GetArrayItem(steps, 0), "Split") && has_type(cJSON_GetArrayItem(steps, 1), "ByteLevel")) {
        const char *pattern = NULL;
        AV_TRY(read_split(cJSON_GetArrayItem(steps, 0), &pattern, path));
        AV_TRY(check_byte_level(cJSON_GetArrayItem(steps, 1), false, path, "pre_tokenizer.pretokenizers[1]"));
        return compile_pattern(m, pattern, path, "pre_tokenizer Split regex");
    }
    char found[256];
    describe(pre, "pretokenizers", found, sizeof found);
    return av_fail(AV_ERROR_UNSUPPORTED, "%s: pre_tokenizer %s is not supported (ByteLevel, or Sequence [Split, "
                                         "ByteLevel] as in Llama 3 and Qwen2)", path, found);
}

static av_status push_id(id_list *list, int32_t id) {
    int32_t *grown = realloc(list->ids, (size_t)(list->n + 1) * sizeof *grown);
    if (!grown) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory reading the post-processor's template");
    list->ids = grown;
    list->ids[list->n++] = id;
    return AV_SUCCESS;
}

// Appends the ids that TEMPLATE's special_tokens give NAME to LIST.
static av_status add_template_tokens(const bpe_model *m, const cJSON *template, const char *name, id_list *list,
                                     const char *path) {
    const cJSON *entry =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(template, "special_tokens"), name);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0)
        return av_fail(AV_ERROR_FORMAT, "%s: post_processor special_tokens has no ids for \"%s\"", path, name);
    const cJSON *item;
    cJSON_ArrayForEach(item, ids) {
        int32_t id = -1;
        AV_TRY(read_token_id(item, path, "post_processor special_tokens", name, &id));
        if (id >= m->n_ids || !m->bytes[id])
            return av_fail(AV_ERROR_FORMAT, "%s: post_processor special token \"%s\" has id %d, which is not in the "
                                            "vocab", path, name, id);
        AV_TRY(push_id(list, id));
    }
    return AV_SUCCESS;
}

// TemplateProcessing's single template: special tokens before and after the prompt's one sequence, $A.
static av_status load_template(bpe_model *m, const cJSON *template, const char *path) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(template, "single");
    if (!cJSON_IsArray(single))
        return av_fail(AV_ERROR_FORMAT, "%s: post_processor TemplateProcessing has no single template", path);
    bool seen_prompt = false;
    int index = 0;
    const cJSON *piece;
    cJSON_ArrayForEach(piece, single) {
        const cJSON *special =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(piece, "SpecialToken"), "id");
        const cJSON *sequence =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(piece, "Sequence"), "id");
        if (cJSON_IsString(special))
            AV_TRY(add_template_tokens(m, template, special->valuestring, seen_prompt ? &m->after : &m->before, path));
        else if (cJSON_IsString(sequence) && !strcmp(sequence->valuestring, "A") && !seen_prompt)
            seen_prompt = true;
        else
            return av_fail(AV_ERROR_UNSUPPORTED, "%s: post_processor single[%d] is neither a SpecialToken nor the one "
                                                 "Sequence A", path, index);
        index++;
    }
    if (!seen_prompt) return av_fail(AV_ERROR_FORMAT, "%s: post_processor single template has no Sequence A", path);
    return AV_SUCCESS;
}

// The ByteLevel post-processor only trims offsets (attnviz's spans are the tokens' own bytes), so it changes no id.
static av_status load_post_processor(bpe_model *m, const cJSON *root, const char *path) {
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (is_absent(post) || has_type(post, "ByteLevel")) return AV_SUCCESS;
    if (has_type(post, "TemplateProcessing")) return load_template(m, post, path);
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(post, "processors");
    const cJSON *template = NULL;
    bool known = has_type(post, "Sequence") && cJSON_IsArray(steps);
    for (const cJSON *step = known ? steps->child : NULL; step; step = step->next) {
        if (has_type(step, "TemplateProcessing") && !template) template = step;
        else if (!has_type(step, "ByteLevel")) known = false;
    }
    if (known) return template ? load_template(m, template, path) : AV_SUCCESS;
    char found[256];
    describe(post, "processors", found, sizeof found);
    return av_fail(AV_ERROR_UNSUPPORTED, "%s: post_processor %s is not supported (null, ByteLevel, "
                                         "TemplateProcessing, or a Sequence of ByteLevel and one TemplateProcessing)",
                   path, found);
}

// Decoding always maps tokens back through the byte map, which is what the ByteLevel decoder does; a file without
// a decoder (a hand-written one) is decoded the same way.
static av_status check_decoder(const cJSON *root, const char *path) {
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (is_absent(decoder) || has_type(decoder, "ByteLevel")) return AV_SUCCESS;
    char found[256];
    describe(decoder, "decoders", found, sizeof found);
    return av_fail(AV_ERROR_UNSUPPORTED, "%s: decoder %s is not supported (null or ByteLevel)", path, found);
}

static av_status build_from_json(bpe_model *m, const cJSON *root, const char *path) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
        return av_fail(AV_ERROR_FORMAT, "%s: model.type is not \"BPE\"", path);
    AV_TRY(load_model_options(m, model, path));
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return av_fail(AV_ERROR_FORMAT, "%s: model.vocab is not a JSON object", path);
    AV_TRY(allocate_ids(m, vocab, cJSON_IsArray(added) ? added : NULL, path));
    AV_TRY(load_vocab(m, vocab, path));
    AV_TRY(load_added_tokens(m, added, path));
    AV_TRY(derive_token_bytes(m, path));
    AV_TRY(load_merges_json(m, cJSON_GetObjectItemCaseSensitive(model, "merges"), path));
    AV_TRY(load_normalizer(m, root, path));
    AV_TRY(load_pre_tokenizer(m, root, path));
    AV_TRY(load_post_processor(m, root, path));
    return check_decoder(root, path);
}

av_status bpe_tokenizer_load_json(tokenizer **out, const cJSON *root, const char *path) {
    if (!out || !root || !path) return av_fail(AV_ERROR_INVALID_ARGUMENT, "bpe_tokenizer_load_json: NULL");
    *out = NULL;
    bpe_model *m = av_calloc(1, sizeof *m, "BPE model");
    av_status status = m ? build_from_json(m, root, path) : AV_ERROR_OUT_OF_MEMORY;
    if (status == AV_SUCCESS) status = wrap_model(out, m);
    if (status != AV_SUCCESS) bpe_model_free(m);
    return status;
}
