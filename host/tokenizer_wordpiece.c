// BERT WordPiece tokenizer, matching Hugging Face tokenizers' BertNormalizer + BertPreTokenizer + WordPiece model +
// [CLS] ... [SEP] template (what BertTokenizerFast runs):
//   1. special tokens ([CLS], [MASK], ...) written in the prompt are cut out first and kept whole;
//   2. normalize each remaining piece character by character: drop NUL, U+FFFD and control characters, map whitespace
//      to ' ', put spaces around CJK ideographs, strip accents (NFD, then drop Mn marks), lower-case;
//   3. split into words on whitespace, and isolate every punctuation character as a word of its own;
//   4. split each word greedily into the longest vocabulary entries ("##" marks a continuation); a word with a piece
//      that is not in the vocabulary, or longer than max_input_chars_per_word characters, becomes one [UNK].
// Every normalized character remembers the byte range of the prompt character it came from, so every token gets
// byte offsets into the original prompt.
#include "json_read.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_INPUT_CHARS_PER_WORD_DEFAULT 100

// Open-addressing hash table from token string to id.
typedef struct vocab_table {
    char **tokens;      // (n_ids) id -> token, NULL for ids the vocabulary skips
    int32_t n_ids;
    int32_t *slots;     // (capacity) id, or -1 for an empty slot
    size_t capacity;    // a power of two, at least twice the number of tokens
} vocab_table;

typedef struct wordpiece {
    vocab_table vocab;
    int32_t unk_id, cls_id, sep_id;
    char *prefix;       // continuing_subword_prefix, "##"
    int max_input_chars_per_word;
    bool clean_text, handle_chinese_chars, strip_accents, lowercase;
    char **specials;    // (n_specials) added tokens matched verbatim in the prompt before normalization
    int n_specials;
} wordpiece;

// One character of normalized text and the prompt bytes [start, end) it came from.
typedef struct norm_char {
    int32_t cp;
    int64_t start, end;
} norm_char;

typedef struct norm_text {
    norm_char *chars;
    size_t n, capacity;
} norm_text;

// ---- vocabulary ----

static uint64_t hash_bytes(uint64_t h, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull; // FNV-1a
    return h;
}

static const uint64_t HASH_SEED = 0xcbf29ce484222325ull;

static bool token_equals(const char *token, const char *a, size_t a_len, const char *b, size_t b_len) {
    return strlen(token) == a_len + b_len && memcmp(token, a, a_len) == 0 && memcmp(token + a_len, b, b_len) == 0;
}

// The id of the token spelled A followed by B, or -1.
static int32_t vocab_find2(const vocab_table *v, const char *a, size_t a_len, const char *b, size_t b_len) {
    size_t mask = v->capacity - 1;
    for (size_t i = hash_bytes(hash_bytes(HASH_SEED, a, a_len), b, b_len) & mask;; i = (i + 1) & mask) {
        int32_t id = v->slots[i];
        if (id < 0) return -1;
        if (token_equals(v->tokens[id], a, a_len, b, b_len)) return id;
    }
}

static int32_t vocab_find(const vocab_table *v, const char *token) {
    return vocab_find2(v, token, strlen(token), "", 0);
}

// Takes ownership of the strings in TOKENS (n_ids entries, NULL allowed). A token listed twice keeps its last id, as
// Hugging Face's vocab.txt reader does.
static av_status vocab_build(vocab_table *v, char **tokens, int32_t n_ids, const char *path) {
    v->tokens = tokens;
    v->n_ids = n_ids;
    v->capacity = 16;
    while (v->capacity < (size_t)n_ids * 2) v->capacity *= 2;
    v->slots = av_malloc(v->capacity * sizeof *v->slots, "WordPiece vocabulary table");
    if (!v->slots) return AV_ERROR_OUT_OF_MEMORY;
    memset(v->slots, 0xff, v->capacity * sizeof *v->slots);
    size_t mask = v->capacity - 1;
    for (int32_t id = 0; id < n_ids; id++) {
        if (!tokens[id]) continue;
        size_t i = hash_bytes(HASH_SEED, tokens[id], strlen(tokens[id])) & mask;
        while (v->slots[i] >= 0 && strcmp(tokens[v->slots[i]], tokens[id]) != 0) i = (i + 1) & mask;
        v->slots[i] = id;
    }
    if (n_ids == 0) return av_fail(AV_ERROR_FORMAT, "%s: empty vocabulary", path);
    return AV_SUCCESS;
}

static void vocab_free(vocab_table *v) {
    if (v->tokens)
        for (int32_t i = 0; i < v->n_ids; i++) free(v->tokens[i]);
    free(v->tokens);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

static char *copy_string(const char *s, size_t len) {
    char *copy = av_malloc(len + 1, "WordPiece token");
    if (!copy) return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

// vocab.txt: one token per line, the line number is the id.
static av_status vocab_load_txt(vocab_table *v, const char *path) {
    char *data;
    size_t len;
    AV_TRY(av_read_file(path, &data, &len));
    int32_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += data[i] == '\n';
    if (len > 0 && data[len - 1] != '\n') n_lines++;
    char **tokens = av_calloc((size_t)n_lines + 1, sizeof *tokens, "WordPiece vocabulary");
    av_status status = tokens ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
    int32_t id = 0;
    for (size_t pos = 0; status == AV_SUCCESS && pos < len; id++) {
        size_t end = pos;
        while (end < len && data[end] != '\n') end++;
        size_t token_len = end - pos;
        if (token_len > 0 && data[pos + token_len - 1] == '\r') token_len--;
        tokens[id] = copy_string(data + pos, token_len);
        if (!tokens[id]) status = AV_ERROR_OUT_OF_MEMORY;
        pos = end + 1;
    }
    free(data);
    if (status == AV_SUCCESS) return vocab_build(v, tokens, n_lines, path);
    if (tokens)
        for (int32_t i = 0; i < n_lines; i++) free(tokens[i]);
    free(tokens);
    return status;
}

// tokenizer.json's model.vocab: {"token": id, ...}
static av_status vocab_load_json(vocab_table *v, const cJSON *vocab, const char *path) {
    if (!cJSON_IsObject(vocab)) return av_fail(AV_ERROR_FORMAT, "%s: model.vocab is not an object", path);
    int count = cJSON_GetArraySize(vocab);
    int32_t n_ids = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vocab) {
        if (!cJSON_IsNumber(entry) || entry->valuedouble < 0 || entry->valuedouble >= (double)count * 4 + 1024 ||
            entry->valuedouble != (double)entry->valueint)
            return av_fail(AV_ERROR_FORMAT, "%s: model.vocab[\"%s\"] is not a plausible token id", path,
                           entry->string);
        if (entry->valueint + 1 > n_ids) n_ids = entry->valueint + 1;
    }
    char **tokens = av_calloc((size_t)n_ids + 1, sizeof *tokens, "WordPiece vocabulary");
    if (!tokens) return AV_ERROR_OUT_OF_MEMORY;
    cJSON_ArrayForEach(entry, vocab) {
        free(tokens[entry->valueint]);
        tokens[entry->valueint] = copy_string(entry->string, strlen(entry->string));
        if (!tokens[entry->valueint]) {
            for (int32_t i = 0; i < n_ids; i++) free(tokens[i]);
            free(tokens);
            return AV_ERROR_OUT_OF_MEMORY;
        }
    }
    return vocab_build(v, tokens, n_ids, path);
}

// ---- character classes (as tokenizers' bert normalizer and pre-tokenizer define them) ----

static bool is_whitespace(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r' || cp == ' ' || cp == 0x0B || cp == 0x0C || cp == 0x85) return true;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// Unassigned code points (Cn) are kept, as tokenizers does (the Python BertTokenizer would drop them).
static bool is_control(int32_t cp) {
    if (cp == '\t' || cp == '\n' || cp == '\r') return false;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO ||
           cat == UTF8PROC_CATEGORY_CS;
}

// ASCII symbols count too ("$", "+", "^", "`" are not Unicode punctuation), as in the original BERT.
static bool is_punctuation(int32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
        return true;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideographs blocks (not Hiragana, Katakana or Hangul, which are written with spaces).
static bool is_cjk_ideograph(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// ---- normalization ----

static av_status norm_push(norm_text *t, int32_t cp, int64_t start, int64_t end) {
    if (t->n == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 64;
        norm_char *chars = realloc(t->chars, capacity * sizeof *chars);
        if (!chars) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory normalizing a prompt");
        t->chars = chars;
        t->capacity = capacity;
    }
    t->chars[t->n++] = (norm_char){cp, start, end};
    return AV_SUCCESS;
}

// Accent stripping and lower-casing of one character; the result (at most a few code points) goes to OUT.
static av_status push_cased(const wordpiece *wp, norm_text *out, int32_t cp, int64_t start, int64_t end) {
    utf8proc_int32_t parts[8];
    utf8proc_ssize_t n_parts = 1;
    parts[0] = cp;
    if (wp->strip_accents) {
        int boundclass = UTF8PROC_BOUNDCLASS_START;
        n_parts = utf8proc_decompose_char(cp, parts, 8, UTF8PROC_DECOMPOSE, &boundclass);
        if (n_parts < 0 || n_parts > 8) {
            parts[0] = cp;
            n_parts = 1;
        }
    }
    for (utf8proc_ssize_t i = 0; i < n_parts; i++) {
        int32_t c = parts[i];
        if (wp->strip_accents && utf8proc_category(c) == UTF8PROC_CATEGORY_MN) continue;
        if (wp->lowercase && c == 0x130) { // İ: the one unconditional full lower-case mapping that expands
            AV_TRY(norm_push(out, 'i', start, end));
            AV_TRY(norm_push(out, 0x307, start, end));
            continue;
        }
        AV_TRY(norm_push(out, wp->lowercase ? utf8proc_tolower(c) : c, start, end));
    }
    return AV_SUCCESS;
}

// Normalizes prompt bytes [begin, end) into OUT (appending).
static av_status normalize(const wordpiece *wp, const char *text, size_t begin, size_t end, norm_text *out) {
    size_t pos = begin;
    while (pos < end) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)text + pos, (utf8proc_ssize_t)(end - pos), &cp);
        if (n <= 0) return av_fail(AV_ERROR_INTERNAL, "WordPiece: invalid UTF-8 at byte %zu after validation", pos);
        int64_t start = (int64_t)pos, stop = (int64_t)(pos + (size_t)n);
        pos += (size_t)n;
        if (wp->clean_text) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (is_whitespace(cp)) cp = ' ';
        }
        if (wp->handle_chinese_chars && is_cjk_ideograph(cp)) {
            AV_TRY(norm_push(out, ' ', start, stop));
            AV_TRY(push_cased(wp, out, cp, start, stop));
            AV_TRY(norm_push(out, ' ', start, stop));
            continue;
        }
        AV_TRY(push_cased(wp, out, cp, start, stop));
    }
    return AV_SUCCESS;
}

// ---- word pieces ----

// Greedy longest-match-first split of the word chars[0..n) into vocabulary entries, pushed onto OUT.
static av_status encode_word(const wordpiece *wp, const norm_char *chars, size_t n, token_list *out) {
    const vocab_table *v = &wp->vocab;
    if (n > (size_t)wp->max_input_chars_per_word)
        return token_list_push(out, wp->unk_id, chars[0].start, chars[n - 1].end, v->tokens[wp->unk_id]);

    // The word as UTF-8, with the byte offset of every character boundary.
    char *bytes = av_malloc(n * 4 + 1, "WordPiece word");
    size_t *byte_at = av_malloc((n + 1) * sizeof *byte_at, "WordPiece word offsets");
    int32_t *piece_ids = av_malloc(n * sizeof *piece_ids, "WordPiece pieces");
    size_t *piece_ends = av_malloc(n * sizeof *piece_ends, "WordPiece pieces");
    av_status status = bytes && byte_at && piece_ids && piece_ends ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
    size_t n_pieces = 0;
    bool unknown = false;
    if (status == AV_SUCCESS) {
        byte_at[0] = 0;
        for (size_t i = 0; i < n; i++)
            byte_at[i + 1] =
                byte_at[i] + (size_t)utf8proc_encode_char(chars[i].cp, (utf8proc_uint8_t *)bytes + byte_at[i]);
        size_t prefix_len = strlen(wp->prefix);
        for (size_t start = 0; start < n && !unknown;) {
            int32_t id = -1;
            size_t stop = n;
            for (; stop > start; stop--) {
                const char *prefix = start > 0 ? wp->prefix : "";
                id = vocab_find2(v, prefix, start > 0 ? prefix_len : 0, bytes + byte_at[start],
                                 byte_at[stop] - byte_at[start]);
                if (id >= 0) break;
            }
            if (id < 0) unknown = true;
            piece_ids[n_pieces] = id;
            piece_ends[n_pieces++] = stop;
            start = stop;
        }
    }
    if (status == AV_SUCCESS && unknown)
        status = token_list_push(out, wp->unk_id, chars[0].start, chars[n - 1].end, v->tokens[wp->unk_id]);
    for (size_t p = 0, start = 0; status == AV_SUCCESS && !unknown && p < n_pieces; start = piece_ends[p++])
        status = token_list_push(out, piece_ids[p], chars[start].start, chars[piece_ends[p] - 1].end,
                                 v->tokens[piece_ids[p]]);
    free(bytes);
    free(byte_at);
    free(piece_ids);
    free(piece_ends);
    return status;
}

// Splits normalized text into words (whitespace separates, punctuation stands alone) and encodes each.
static av_status encode_normalized(const wordpiece *wp, const norm_text *t, token_list *out) {
    size_t word_start = 0;
    for (size_t i = 0; i <= t->n; i++) {
        bool at_end = i == t->n;
        bool space = !at_end && is_whitespace(t->chars[i].cp);
        bool punct = !at_end && !space && is_punctuation(t->chars[i].cp);
        if (!at_end && !space && !punct) continue;
        if (i > word_start) AV_TRY(encode_word(wp, t->chars + word_start, i - word_start, out));
        if (punct) AV_TRY(encode_word(wp, t->chars + i, 1, out));
        word_start = i + 1;
    }
    return AV_SUCCESS;
}

// The longest special token spelled at TEXT[pos..len), as an index into wp->specials, or -1.
static int special_at(const wordpiece *wp, const char *text, size_t pos, size_t len) {
    int best = -1;
    size_t best_len = 0;
    for (int s = 0; s < wp->n_specials; s++) {
        size_t n = strlen(wp->specials[s]);
        if (n > best_len && n <= len - pos && memcmp(text + pos, wp->specials[s], n) == 0) {
            best = s;
            best_len = n;
        }
    }
    return best;
}

static av_status encode_segment(const wordpiece *wp, const char *text, size_t begin, size_t end, token_list *out) {
    if (end <= begin) return AV_SUCCESS;
    norm_text t = {0};
    av_status status = normalize(wp, text, begin, end, &t);
    if (status == AV_SUCCESS) status = encode_normalized(wp, &t, out);
    free(t.chars);
    return status;
}

static av_status wordpiece_encode(const tokenizer *tok, const char *text, size_t len, token_list *out) {
    const wordpiece *wp = tok->impl;
    AV_TRY(token_list_push(out, wp->cls_id, 0, 0, wp->vocab.tokens[wp->cls_id]));
    size_t segment_start = 0;
    for (size_t pos = 0; pos < len;) {
        int s = special_at(wp, text, pos, len);
        if (s < 0) {
            pos++;
            continue;
        }
        AV_TRY(encode_segment(wp, text, segment_start, pos, out));
        size_t n = strlen(wp->specials[s]);
        AV_TRY(token_list_push(out, vocab_find(&wp->vocab, wp->specials[s]), (int64_t)pos, (int64_t)(pos + n),
                               wp->specials[s]));
        pos += n;
        segment_start = pos;
    }
    AV_TRY(encode_segment(wp, text, segment_start, len, out));
    return token_list_push(out, wp->sep_id, 0, 0, wp->vocab.tokens[wp->sep_id]);
}

// Tokens joined by spaces, continuation pieces glued to the piece before them without their prefix.
static av_status wordpiece_decode(const tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len) {
    const wordpiece *wp = tok->impl;
    size_t prefix_len = strlen(wp->prefix);
    size_t cap = 1;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= wp->vocab.n_ids || !wp->vocab.tokens[ids[i]])
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "decode: token id %d is not in the vocabulary", ids[i]);
        cap += strlen(wp->vocab.tokens[ids[i]]) + 1;
    }
    char *buf = av_malloc(cap, "decoded text");
    if (!buf) return AV_ERROR_OUT_OF_MEMORY;
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const char *token = wp->vocab.tokens[ids[i]];
        bool continuation = prefix_len > 0 && strncmp(token, wp->prefix, prefix_len) == 0;
        if (continuation) token += prefix_len;
        else if (i > 0) buf[used++] = ' ';
        size_t token_len = strlen(token);
        memcpy(buf + used, token, token_len);
        used += token_len;
    }
    buf[used] = '\0';
    *text = buf;
    *len = used;
    return AV_SUCCESS;
}

static void wordpiece_free(wordpiece *wp) {
    if (!wp) return;
    vocab_free(&wp->vocab);
    free(wp->prefix);
    for (int i = 0; i < wp->n_specials; i++) free(wp->specials[i]);
    free(wp->specials);
    free(wp);
}

static void wordpiece_destroy(tokenizer *tok) {
    wordpiece_free(tok->impl);
    free(tok);
}

// ---- configuration ----

// A special token in tokenizer_config.json is either a string or an AddedToken object {"content": ...}.
static const char *special_token_name(const cJSON *config, const char *key, const char *fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsObject(item)) item = cJSON_GetObjectItemCaseSensitive(item, "content");
    return cJSON_IsString(item) ? item->valuestring : fallback;
}

static av_status add_special(wordpiece *wp, const char *name) {
    if (vocab_find(&wp->vocab, name) < 0 || name[0] == '\0') return AV_SUCCESS;
    for (int i = 0; i < wp->n_specials; i++)
        if (!strcmp(wp->specials[i], name)) return AV_SUCCESS;
    char **specials = realloc(wp->specials, (size_t)(wp->n_specials + 1) * sizeof *specials);
    if (!specials) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory loading special tokens");
    wp->specials = specials;
    wp->specials[wp->n_specials] = copy_string(name, strlen(name));
    if (!wp->specials[wp->n_specials]) return AV_ERROR_OUT_OF_MEMORY;
    wp->n_specials++;
    return AV_SUCCESS;
}

static av_status require_token(const wordpiece *wp, const char *name, int32_t *id, const char *path) {
    *id = vocab_find(&wp->vocab, name);
    if (*id < 0) return av_fail(AV_ERROR_FORMAT, "%s: the vocabulary has no %s token", path, name);
    return AV_SUCCESS;
}

// vocab.txt plus, when present, tokenizer_config.json (do_lower_case, strip_accents, tokenize_chinese_chars and
// the special token names), with Hugging Face BertTokenizer's defaults otherwise.
static av_status load_vocab_txt(wordpiece *wp, const char *dir) {
    char *vocab_path = av_path_join(dir, "vocab.txt");
    char *config_path = av_path_join(dir, "tokenizer_config.json");
    cJSON *config = NULL;
    av_status status = vocab_path && config_path ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
    if (status == AV_SUCCESS && !av_file_exists(vocab_path))
        status = av_fail(AV_ERROR_IO, "%s: no vocab.txt or tokenizer.json for the WordPiece tokenizer", dir);
    if (status == AV_SUCCESS) status = vocab_load_txt(&wp->vocab, vocab_path);
    if (status == AV_SUCCESS && av_file_exists(config_path)) status = tokenizer_parse_json_file(config_path, &config);
    wp->lowercase = true;
    bool strip_set = false;
    if (status == AV_SUCCESS && config) {
        status = json_optional_bool(config, "do_lower_case", wp->lowercase, &wp->lowercase, config_path, NULL);
        const cJSON *strip = cJSON_GetObjectItemCaseSensitive(config, "strip_accents");
        strip_set = cJSON_IsBool(strip);
        if (status == AV_SUCCESS)
            status = json_optional_bool(config, "strip_accents", wp->strip_accents, &wp->strip_accents, config_path,
                                        NULL);
        if (status == AV_SUCCESS)
            status = json_optional_bool(config, "tokenize_chinese_chars", wp->handle_chinese_chars,
                                        &wp->handle_chinese_chars, config_path, NULL);
    }
    if (!strip_set) wp->strip_accents = wp->lowercase; // strip_accents null follows lower-casing
    const char *unk = special_token_name(config, "unk_token", "[UNK]");
    const char *cls = special_token_name(config, "cls_token", "[CLS]");
    const char *sep = special_token_name(config, "sep_token", "[SEP]");
    const char *names[] = {unk, sep, special_token_name(config, "pad_token", "[PAD]"), cls,
                           special_token_name(config, "mask_token", "[MASK]")};
    if (status == AV_SUCCESS) status = require_token(wp, unk, &wp->unk_id, vocab_path);
    if (status == AV_SUCCESS) status = require_token(wp, cls, &wp->cls_id, vocab_path);
    if (status == AV_SUCCESS) status = require_token(wp, sep, &wp->sep_id, vocab_path);
    for (size_t i = 0; status == AV_SUCCESS && i < sizeof names / sizeof *names; i++)
        status = add_special(wp, names[i]);
    cJSON_Delete(config);
    free(vocab_path);
    free(config_path);
    return status;
}

static av_status load_bert_normalizer(wordpiece *wp, const cJSON *normalizer, const char *path) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(normalizer, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BertNormalizer") != 0)
        return av_fail(AV_ERROR_UNSUPPORTED, "%s: WordPiece normalizer \"%s\" is not supported (BertNormalizer)", path,
                       cJSON_IsString(type) ? type->valuestring : "?");
    AV_TRY(json_optional_bool(normalizer, "clean_text", wp->clean_text, &wp->clean_text, path, NULL));
    AV_TRY(json_optional_bool(normalizer, "handle_chinese_chars", wp->handle_chinese_chars, &wp->handle_chinese_chars,
                              path, NULL));
    AV_TRY(json_optional_bool(normalizer, "lowercase", wp->lowercase, &wp->lowercase, path, NULL));
    wp->strip_accents = wp->lowercase;
    return json_optional_bool(normalizer, "strip_accents", wp->strip_accents, &wp->strip_accents, path, NULL);
}

// The [CLS] and [SEP] names from a TemplateProcessing or BertProcessing post-processor (defaults otherwise).
static void post_processor_names(const cJSON *post, const char **cls, const char **sep) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(post, "type");
    if (!cJSON_IsString(type)) return;
    if (!strcmp(type->valuestring, "BertProcessing")) {
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "cls"), 0);
        const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "sep"), 0);
        if (cJSON_IsString(c)) *cls = c->valuestring;
        if (cJSON_IsString(s)) *sep = s->valuestring;
    } else if (!strcmp(type->valuestring, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
        int n = cJSON_GetArraySize(single);
        const cJSON *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, 0), "SpecialToken");
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(single, n - 1), "SpecialToken");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(first, "id");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(last, "id");
        if (cJSON_IsString(c)) *cls = c->valuestring;
        if (cJSON_IsString(s)) *sep = s->valuestring;
    }
}

static av_status load_tokenizer_json(wordpiece *wp, const cJSON *root, const char *path) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *max_chars = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    const cJSON *normalizer = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    av_status status = AV_SUCCESS;
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "WordPiece") != 0)
        status = av_fail(AV_ERROR_FORMAT, "%s: model.type is not \"WordPiece\"", path);
    if (status == AV_SUCCESS)
        status = vocab_load_json(&wp->vocab, cJSON_GetObjectItemCaseSensitive(model, "vocab"), path);
    if (status == AV_SUCCESS && cJSON_IsString(prefix)) {
        free(wp->prefix);
        wp->prefix = copy_string(prefix->valuestring, strlen(prefix->valuestring));
        if (!wp->prefix) status = AV_ERROR_OUT_OF_MEMORY;
    }
    if (status == AV_SUCCESS && cJSON_IsNumber(max_chars)) {
        if (max_chars->valueint < 1)
            status = av_fail(AV_ERROR_FORMAT, "%s: model.max_input_chars_per_word must be positive", path);
        wp->max_input_chars_per_word = max_chars->valueint;
    }
    if (status == AV_SUCCESS && normalizer && !cJSON_IsNull(normalizer))
        status = load_bert_normalizer(wp, normalizer, path);
    const char *cls = "[CLS]", *sep = "[SEP]";
    post_processor_names(cJSON_GetObjectItemCaseSensitive(root, "post_processor"), &cls, &sep);
    if (status == AV_SUCCESS) status = require_token(wp, cJSON_IsString(unk) ? unk->valuestring : "[UNK]",
                                                     &wp->unk_id, path);
    if (status == AV_SUCCESS) status = require_token(wp, cls, &wp->cls_id, path);
    if (status == AV_SUCCESS) status = require_token(wp, sep, &wp->sep_id, path);
    const cJSON *added;
    cJSON_ArrayForEach(added, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(added, "content");
        if (status == AV_SUCCESS && cJSON_IsString(content)) status = add_special(wp, content->valuestring);
    }
    return status;
}

// A tokenizer with Hugging Face BertTokenizer's defaults, for a loader to fill; NULL when out of memory.
static wordpiece *wordpiece_new(void) {
    wordpiece *wp = av_calloc(1, sizeof *wp, "WordPiece tokenizer");
    if (!wp) return NULL;
    wp->max_input_chars_per_word = MAX_INPUT_CHARS_PER_WORD_DEFAULT;
    wp->clean_text = wp->handle_chinese_chars = true;
    if ((wp->prefix = copy_string("##", 2))) return wp;
    wordpiece_free(wp);
    return NULL;
}

// WP as the tokenizer *out when its loader succeeded (STATUS), else freed.
static av_status wrap_wordpiece(tokenizer **out, wordpiece *wp, av_status status) {
    tokenizer *tok = status == AV_SUCCESS ? av_calloc(1, sizeof *tok, "tokenizer") : NULL;
    if (!tok) {
        wordpiece_free(wp);
        return status == AV_SUCCESS ? AV_ERROR_OUT_OF_MEMORY : status;
    }
    tok->kind = "wordpiece";
    tok->encode = wordpiece_encode;
    tok->decode = wordpiece_decode;
    tok->destroy = wordpiece_destroy;
    tok->impl = wp;
    *out = tok;
    return AV_SUCCESS;
}

av_status wordpiece_tokenizer_load_json(tokenizer **out, const cJSON *root, const char *path) {
    if (!out || !root || !path) return av_fail(AV_ERROR_INVALID_ARGUMENT, "wordpiece_tokenizer_load_json: NULL");
    *out = NULL;
    wordpiece *wp = wordpiece_new();
    if (!wp) return AV_ERROR_OUT_OF_MEMORY;
    return wrap_wordpiece(out, wp, load_tokenizer_json(wp, root, path));
}

av_status wordpiece_tokenizer_load(tokenizer **out, const char *dir) {
    if (!out || !dir) return av_fail(AV_ERROR_INVALID_ARGUMENT, "wordpiece_tokenizer_load: NULL argument");
    *out = NULL;
    wordpiece *wp = wordpiece_new();
    if (!wp) return AV_ERROR_OUT_OF_MEMORY;
    return wrap_wordpiece(out, wp, load_vocab_txt(wp, dir));
}
