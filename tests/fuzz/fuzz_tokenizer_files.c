// Tokenizer files as tokenizer_load meets them. The first byte picks the layout, the rest is its text:
//   0: tokenizer.json (BPE or WordPiece, by model.type)
//   1: vocab.json and merges.txt, split at the first NUL byte
//   2: vocab.txt (WordPiece)
// A tokenizer that loads then encodes and decodes a fixed prompt.
#include "fuzz_support.h"

#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char prompt[] = "Hello world! The quick brown fox, caf\xc3\xa9 d\xc3\xa9j\xc3\xa0 vu; 1234 <|endoftext|> \xe4\xb8\xad\xe6\x96\x87";

static void write_layout(int layout, const uint8_t *text, size_t size) {
    static const char *const every[] = {"tokenizer.json", "vocab.json", "merges.txt", "vocab.txt"};
    for (int i = 0; i < 4; i++) {
        char *path = av_path_join(fuzz_scratch_dir(), every[i]);
        unlink(path);
        free(path);
    }
    if (layout == 0) {
        fuzz_write_file("tokenizer.json", text, size);
    } else if (layout == 1) {
        const uint8_t *nul = memchr(text, 0, size);
        size_t vocab = nul ? (size_t)(nul - text) : size;
        fuzz_write_file("vocab.json", text, vocab);
        fuzz_write_file("merges.txt", nul ? nul + 1 : text + size, nul ? size - vocab - 1 : 0);
    } else {
        fuzz_write_file("vocab.txt", text, size);
    }
}

static void use(const tokenizer *tok) {
    token_list list;
    if (tokenizer_encode(tok, prompt, sizeof prompt - 1, &list) != AV_SUCCESS) return;
    for (int i = 0; i < list.n; i++) {
        fuzz_require(list.starts[i] >= 0 && list.starts[i] <= list.ends[i] &&
                         list.ends[i] <= (int64_t)(sizeof prompt - 1),
                     "token spans lie in the prompt");
        fuzz_require(list.display[i] != NULL, "every token has a label");
    }
    char *text;
    size_t len;
    if (tokenizer_decode(tok, list.ids, list.n, &text, &len) == AV_SUCCESS) free(text);
    token_list_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    write_layout(data[0] % 3, data + 1, size - 1);
    tokenizer *tok = NULL;
    if (tokenizer_load(&tok, fuzz_scratch_dir()) == AV_SUCCESS) {
        use(tok);
        tokenizer_destroy(tok);
    } else {
        fuzz_require(tok == NULL, "a failed load leaves no tokenizer");
    }
    return 0;
}
