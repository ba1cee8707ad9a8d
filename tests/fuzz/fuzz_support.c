#include "fuzz_support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch[PATH_MAX];

// SIZE bytes at BUF hold DIR/NAME, or the process aborts: a path cut short would write somewhere else.
static void join_or_abort(char *buf, size_t size, const char *dir, const char *name) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size) {
        fprintf(stderr, "fuzz: path too long: %s/%s\n", dir, name);
        abort();
    }
}

static void remove_scratch(void) {
    static const char *const names[] = {"config.json", "model.safetensors", "tokenizer.json", "vocab.json",
                                        "merges.txt", "vocab.txt", NULL};
    char path[PATH_MAX];
    for (int i = 0; names[i]; i++) {
        join_or_abort(path, sizeof path, scratch, names[i]);
        unlink(path);
    }
    rmdir(scratch);
}

const char *fuzz_scratch_dir(void) {
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        join_or_abort(scratch, sizeof scratch, tmp && *tmp ? tmp : "/tmp", "attnviz-fuzz-XXXXXX");
        if (!mkdtemp(scratch)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_scratch);
    }
    return scratch;
}

const char *fuzz_write_file(const char *name, const void *data, size_t size) {
    static char path[PATH_MAX];
    join_or_abort(path, sizeof path, fuzz_scratch_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fuzz_require(int cond, const char *message) {
    if (!cond) {
        fprintf(stderr, "fuzz: property broken: %s\n", message);
        abort();
    }
}
