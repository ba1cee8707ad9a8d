// Tokenizers: GPT-2 byte-level BPE and BERT WordPiece behind one interface.
#ifndef AV_TOKENIZER_H
#define AV_TOKENIZER_H

#include "internal.h"

typedef struct token_list {
    int32_t *ids;      // (n)
    int64_t *starts;   // (n) byte offset of the token's first byte in the prompt
    int64_t *ends;     // (n) one past its last byte; special tokens added by the tokenizer get start == end
    char **display;    // (n) UTF-8 strings for axis labels ("␣the" style is up to the tokenizer; see tokenizer.c)
    int n;
} token_list;

typedef struct tokenizer tokenizer;

struct tokenizer {
    const char *kind; // "byte-level-bpe" (GPT-2, Llama 3, Qwen2) or "wordpiece"
    av_status (*encode)(const tokenizer *tok, const char *text, size_t len, token_list *out);
    // Concatenated text of ids (malloc'ed, NUL-terminated); *len excludes the NUL.
    av_status (*decode)(const tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len);
    void (*destroy)(tokenizer *tok);
    void *impl;
};

// Picks the tokenizer from the files in DIR: tokenizer.json (model.type BPE or WordPiece), or vocab.json +
// merges.txt, or vocab.txt.
av_status tokenizer_load(tokenizer **out, const char *dir);
av_status tokenizer_encode(const tokenizer *tok, const char *text, size_t len, token_list *out);
av_status tokenizer_decode(const tokenizer *tok, const int32_t *ids, int n, char **text, size_t *len);
void tokenizer_destroy(tokenizer *tok);
void token_list_free(token_list *list);

// The two families. tokenizer_load picks one from the files in a directory.
av_status bpe_tokenizer_load_files(tokenizer **out, const char *vocab_json, const char *merges_txt);
// ROOT: tokenizer.json (read from PATH, named in messages) as parsed by tokenizer_parse_json_file.
struct cJSON;
av_status bpe_tokenizer_load_json(tokenizer **out, const struct cJSON *root, const char *path);
// DIR holds vocab.txt (and optionally tokenizer_config.json for do_lower_case); tokenizer_load takes a tokenizer.json
// beside it first (wordpiece_tokenizer_load_json).
av_status wordpiece_tokenizer_load(tokenizer **out, const char *dir);
// ROOT: a WordPiece tokenizer.json, as for bpe_tokenizer_load_json.
av_status wordpiece_tokenizer_load_json(tokenizer **out, const struct cJSON *root, const char *path);

// Reads and parses the JSON file PATH (*root: free with cJSON_Delete); a parse error names the byte it failed at.
av_status tokenizer_parse_json_file(const char *path, struct cJSON **root);

// Grows LIST by one token (the encoders' shared append).
av_status token_list_push(token_list *list, int32_t id, int64_t start, int64_t end, const char *display);

// A token's bytes as a one-line label (malloc'ed, NULL when out of memory): spaces as U+00B7, \n \t \r spelled
// out, and bytes that are not a complete UTF-8 character (half of a split character) or control bytes as <0xE2>.
char *token_display_string(const char *bytes, size_t len);

// Checks that TEXT is valid UTF-8; fails with AV_ERROR_PROMPT naming the byte offset otherwise.
av_status utf8_validate(const char *text, size_t len);
// Length (1-4) of the valid UTF-8 character that starts TEXT, or 0 when it is invalid or cut off by LEN.
int utf8_char_length(const char *text, size_t len);

#endif
