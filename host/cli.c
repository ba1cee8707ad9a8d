// attnviz command line.
#include "attnviz.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("attnviz %s\n", av_version());
        return 0;
    }
    fprintf(stderr, "usage: attnviz run|tokenize ...\n");
    return 2;
}
