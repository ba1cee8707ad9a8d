// GPT-2's byte-level BPE, exactly as OpenAI's encoder.py and Hugging Face's ByteLevel + BPE pipeline do it:
//   1. split out added (special) tokens such as "<|endoftext|>",
//   2. pre-tokenize each remaining segment with GPT-2's regex,
//   3. map each piece's bytes to the 256 single-byte tokens and apply merges, lowest rank first.
// Tokens are handled as ids throughout: a merge is the pair (left id, right id) -> (rank, merged id).
#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
} special_token;

typedef struct bpe_model {
    int32_t n_ids;           // ids run 0..n_ids-1; ids no entry uses have NULL symbols
    char **symbols;          // (n_ids) the token as vocab.json spells it (bytes mapped to printable characters)
    char **bytes;            // (n_ids) the raw bytes it stands for
    size_t *byte_lens;       // (n_ids)
    int32_t *vocab_slots;    // open addressing over symbols, -1 empty
    size_t vocab_mask;
    merge_slot *merge_slots; // open addressing over pairs
    size_t merge_mask;
    int32_t byte_ids[256];   // the single-byte token of each byte
    special_token *specials;
    int n_specials;
    pcre2_code *pattern;
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

static av_status insert_symbol(bpe_model *m, const char *symbol, int32_t id, const char *path) {
    size_t len = strlen(symbol);
    if (m->symbols[id])
        return av_fail(AV_ERROR_FORMAT, "%s: id %d is given to both \"%s\" and \"%s\"", path, id, m->symbols[id],
                       symbol);
    if (vocab_find(m, symbol, len) >= 0)
        return av_fail(AV_ERROR_FORMAT, "%s: token \"%s\" is listed twice", path, symbol);
    m->symbols[id] = copy_string(symbol, len, "BPE symbol");
    if (!m->symbols[id]) return AV_ERROR_OUT_OF_MEMORY;
    size_t i = hash_bytes(symbol, len) & m->vocab_mask;
    while (m->vocab_slots[i] >= 0) i = (i + 1) & m->vocab_mask;
    m->vocab_slots[i] = id;
    return AV_SUCCESS;
}

// EXTRA leaves room in the table for added tokens that the vocab lacks.
static av_status load_vocab(bpe_model *m, const cJSON *vocab, size_t extra, const char *path) {
    if (!cJSON_IsObject(vocab)) return av_fail(AV_ERROR_FORMAT, "%s: the vocabulary is not a JSON object", path);
    size_t count = (size_t)cJSON_GetArraySize(vocab) + extra;
    size_t capacity = table_capacity(count);
    m->vocab_slots = av_malloc(capacity * sizeof *m->vocab_slots, "BPE vocab table");
    if (!m->vocab_slots) return AV_ERROR_OUT_OF_MEMORY;
    memset(m->vocab_slots, 0xFF, capacity * sizeof *m->vocab_slots);
    m->vocab_mask = capacity - 1;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vocab) AV_TRY(insert_symbol(m, entry->string, (int32_t)entry->valuedouble, path));
    return AV_SUCCESS;
}

static av_status add_special(bpe_model *m, const char *content, int32_t id) {
    special_token *grown = realloc(m->specials, (size_t)(m->n_specials + 1) * sizeof *grown);
    if (!grown) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory adding special token %s", content);
    m->specials = grown;
    special_token *s = &m->specials[m->n_specials];
    s->len = strlen(content);
    s->id = id;
    s->content = copy_string(content, s->len, "special token");
    if (!s->content) return AV_ERROR_OUT_OF_MEMORY;
    m->n_specials++;
    // A special token decodes to its text verbatim, not through the byte map.
    free(m->bytes[id]);
    m->bytes[id] = copy_string(content, s->len, "special token bytes");
    m->byte_lens[id] = s->len;
    return m->bytes[id] ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
}

static av_status load_added_tokens(bpe_model *m, const cJSON *added, const char *path) {
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return av_fail(AV_ERROR_FORMAT, "%s: added_tokens is not an array", path);
    const cJSON *entry;
    int index = 0;
    cJSON_ArrayForEach(entry, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(entry, "content");
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return av_fail(AV_ERROR_FORMAT, "%s: added_tokens[%d] has no content", path, index);
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(entry, "id")->valuedouble;
        if (!m->symbols[id]) AV_TRY(insert_symbol(m, content->valuestring, id, path));
        else if (strcmp(m->symbols[id], content->valuestring))
            return av_fail(AV_ERROR_FORMAT, "%s: added_tokens[%d] \"%s\" has id %d, which the vocab gives to \"%s\"",
                           path, index, content->valuestring, id, m->symbols[id]);
        AV_TRY(add_special(m, content->valuestring, id));
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

static av_status compile_pattern(bpe_model *m) {
    int error;
    PCRE2_SIZE offset;
    m->pattern = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &error,
                               &offset, NULL);
    if (!m->pattern) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof message);
        return av_fail(AV_ERROR_INTERNAL, "GPT-2 pre-tokenizer regex: %s at offset %zu", (char *)message, offset);
    }
    // JIT is only a speed-up: without it (a PCRE2 built without JIT) pcre2_match interprets the same pattern.
    pcre2_jit_compile(m->pattern, PCRE2_JIT_COMPLETE);
    return AV_SUCCESS;
}

// ---- encoding ----

static av_status push_token(const bpe_model *m, int32_t id, int64_t start, token_list *out) {
    size_t len = m->byte_lens[id];
    char *display = token_display_string(m->bytes[id], len);
    if (!display) return AV_ERROR_OUT_OF_MEMORY;
    av_status status = token_list_push(out, id, start, start + (int64_t)len, display);
    free(display);
    return status;
}

// Working arrays for one piece, sized for the longest piece: symbol ids and their byte offsets in the piece.
typedef struct piece_work {
    int32_t *ids;
    int64_t *starts;
} piece_work;

// Applies merges to PIECE as encoder.py's bpe() does: merge every occurrence of the lowest-ranked adjacent pair,
// left to right, until no adjacent pair has a rank.
static av_status encode_piece(const bpe_model *m, const unsigned char *piece, size_t len, int64_t offset,
                              piece_work *work, token_list *out) {
    int32_t *ids = work->ids;
    int64_t *starts = work->starts;
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        ids[i] = m->byte_ids[piece[i]];
        starts[i] = (int64_t)i;
    }
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
    for (size_t i = 0; i < n; i++) AV_TRY(push_token(m, ids[i], offset + starts[i], out));
    return AV_SUCCESS;
}

static av_status encode_segment(const bpe_model *m, const char *text, size_t start, size_t end,
                                pcre2_match_data *match, piece_work *work, token_list *out) {
    const char *segment = text + start;
    size_t len = end - start;
    size_t at = 0;
    while (at < len) {
        // The segment is matched on its own, as Hugging Face does after splitting out added tokens, so that
        // \s+(?!\S) does not look past a special token.
        int rc = pcre2_match(m->pattern, (PCRE2_SPTR)segment, len, at, PCRE2_NO_UTF_CHECK, match, NULL);
        PCRE2_SIZE *span = pcre2_get_ovector_pointer(match);
        // Every character is \s, \p{L}, \p{N} or none of these, so matches tile the segment.
        if (rc < 0 || span[0] != at || span[1] <= at)
            return av_fail(AV_ERROR_INTERNAL, "GPT-2 pre-tokenizer did not tile the prompt at byte %zu (pcre2 %d)",
                           start + at, rc);
        AV_TRY(encode_piece(m, (const unsigned char *)segment + at, span[1] - at, (int64_t)(start + at), work, out));
        at = span[1];
    }
    return AV_SUCCESS;
}

// The longest special token starting at TEXT, or NULL.
static const special_token *special_at(const bpe_model *m, const char *text, size_t len) {
    const special_token *found = NULL;
    for (int i = 0; i < m->n_specials; i++) {
        const special_token *s = &m->specials[i];
        if (s->len <= len && !memcmp(text, s->content, s->len) && (!found || s->len > found->len)) found = s;
    }
    return found;
}

// Special tokens in the prompt text (GPT-2's "<|endoftext|>", id 50256) are encoded as the special token, not
// as the 13 characters, the way Hugging Face's tokenizer does; the token's span covers those 13 bytes.
static av_status encode_text(const bpe_model *m, const char *text, size_t len, pcre2_match_data *match,
                             piece_work *work, token_list *out) {
    size_t segment_start = 0;
    for (size_t i = 0; i < len;) {
        const special_token *special = m->n_specials ? special_at(m, text + i, len - i) : NULL;
        if (!special) {
            i++;
            continue;
        }
        AV_TRY(encode_segment(m, text, segment_start, i, match, work, out));
        AV_TRY(push_token(m, special->id, (int64_t)i, out));
        i += special->len;
        segment_start = i;
    }
    return encode_segment(m, text, segment_start, len, match, work, out);
}

static av_status bpe_encode(const tokenizer *tok, const char *text, size_t len, token_list *out) {
    const bpe_model *m = tok->impl;
    if (len == 0) return AV_SUCCESS;
    // PCRE2 is told not to re-check UTF-8 (it would rescan the rest of the text on every match).
    AV_TRY(utf8_validate(text, len));
    pcre2_match_data *match = pcre2_match_data_create_from_pattern(m->pattern, NULL);
    piece_work work = {av_malloc(len * sizeof *work.ids, "BPE piece ids"),
                       av_malloc(len * sizeof *work.starts, "BPE piece offsets")};
    av_status status = AV_ERROR_OUT_OF_MEMORY;
    if (!match) av_fail(status, "out of memory allocating PCRE2 match data");
    else if (work.ids && work.starts) status = encode_text(m, text, len, match, &work, out);
    pcre2_match_data_free(match);
    free(work.ids);
    free(work.starts);
    return status;
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
    AV_TRY(compile_pattern(m));
    tokenizer *tok = av_calloc(1, sizeof *tok, "tokenizer");
    if (!tok) return AV_ERROR_OUT_OF_MEMORY;
    *tok = (tokenizer){"gpt2-bpe", bpe_encode, bpe_decode, bpe_destroy, m};
    *out = tok;
    return AV_SUCCESS;
}

static av_status parse_json_file(const char *path, cJSON **root) {
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

static av_status build_from_files(bpe_model *m, const cJSON *vocab, const char *vocab_json, const char *merges_txt) {
    AV_TRY(allocate_ids(m, vocab, NULL, vocab_json));
    AV_TRY(load_vocab(m, vocab, 0, vocab_json));
    // vocab.json has no added-token list; GPT-2's only special token is <|endoftext|>.
    int32_t end_of_text = vocab_find(m, END_OF_TEXT, strlen(END_OF_TEXT));
    if (end_of_text >= 0) AV_TRY(add_special(m, END_OF_TEXT, end_of_text));
    AV_TRY(derive_token_bytes(m, vocab_json));
    return load_merges_txt(m, merges_txt);
}

av_status bpe_tokenizer_load_files(tokenizer **out, const char *vocab_json, const char *merges_txt) {
    if (!out || !vocab_json || !merges_txt) return av_fail(AV_ERROR_INVALID_ARGUMENT, "bpe_tokenizer_load_files: NULL");
    *out = NULL;
    cJSON *vocab;
    AV_TRY(parse_json_file(vocab_json, &vocab));
    bpe_model *m = av_calloc(1, sizeof *m, "BPE model");
    av_status status = m ? build_from_files(m, vocab, vocab_json, merges_txt) : AV_ERROR_OUT_OF_MEMORY;
    cJSON_Delete(vocab);
    if (status == AV_SUCCESS) status = wrap_model(out, m);
    if (status != AV_SUCCESS) bpe_model_free(m);
    return status;
}

// Only GPT-2's own pre-tokenization is implemented; another one would silently give different ids.
static av_status check_pre_tokenizer(const cJSON *root, const char *path) {
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pre || cJSON_IsNull(pre)) return AV_SUCCESS;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(pre, "add_prefix_space");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "ByteLevel") || cJSON_IsTrue(prefix))
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: pre_tokenizer is not GPT-2's ByteLevel without add_prefix_space",
                       path);
    return AV_SUCCESS;
}

static av_status build_from_json(bpe_model *m, const cJSON *root, const char *path) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE"))
        return av_fail(AV_ERROR_FORMAT, "%s: model.type is not \"BPE\"", path);
    AV_TRY(check_pre_tokenizer(root, path));
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return av_fail(AV_ERROR_FORMAT, "%s: model.vocab is not a JSON object", path);
    AV_TRY(allocate_ids(m, vocab, cJSON_IsArray(added) ? added : NULL, path));
    AV_TRY(load_vocab(m, vocab, (size_t)cJSON_GetArraySize(added), path));
    AV_TRY(load_added_tokens(m, added, path));
    AV_TRY(derive_token_bytes(m, path));
    return load_merges_json(m, cJSON_GetObjectItemCaseSensitive(model, "merges"), path);
}

av_status bpe_tokenizer_load_json(tokenizer **out, const char *tokenizer_json) {
    if (!out || !tokenizer_json) return av_fail(AV_ERROR_INVALID_ARGUMENT, "bpe_tokenizer_load_json: NULL");
    *out = NULL;
    cJSON *root;
    AV_TRY(parse_json_file(tokenizer_json, &root));
    bpe_model *m = av_calloc(1, sizeof *m, "BPE model");
    av_status status = m ? build_from_json(m, root, tokenizer_json) : AV_ERROR_OUT_OF_MEMORY;
    cJSON_Delete(root);
    if (status == AV_SUCCESS) status = wrap_model(out, m);
    if (status != AV_SUCCESS) bpe_model_free(m);
    return status;
}
