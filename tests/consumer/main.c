// A program outside the attnviz tree, built against the installed package: loads a checkpoint and runs it.
#include <attnviz.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: consumer MODEL_DIR OUT_DIR\n");
        return 2;
    }
    av_model *model;
    if (av_model_load(&model, argv[1]) != AV_SUCCESS) {
        fprintf(stderr, "consumer: %s\n", av_last_error());
        return 1;
    }
    av_run_options options;
    av_run_options_default(&options);
    options.device = "cpu";
    options.png = "mean";
    const char *prompt = "Hello from outside the tree.";
    av_status st = av_run(model, prompt, strlen(prompt), &options, argv[2]);
    av_model_destroy(model);
    if (st != AV_SUCCESS) {
        fprintf(stderr, "consumer: %s: %s\n", av_status_string(st), av_last_error());
        return 1;
    }
    printf("consumer: attnviz %s wrote %s\n", av_version(), argv[2]);
    return 0;
}
