// attnviz command line: `run` captures attention and writes heatmaps and dumps, `tokenize` prints token ids.
#include "attnviz.h"
#include "internal.h"
#include "tokenizer.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// Exit codes (documented in the README and in --help).
enum { EXIT_OK = 0, EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_MEMORY = 3, EXIT_DEVICE = 4, EXIT_INTERNAL = 5 };

static const char *const run_usage =
    "usage: attnviz run --model DIR (--prompt TEXT | --prompt-file FILE) --out DIR [options]\n"
    "\n"
    "Runs the checkpoint in DIR on the prompt and writes into the --out directory:\n"
    "  meta.json                          tokens, byte offsets, model dimensions, what was captured, files\n"
    "  attention/layer_XX.npy             float32 (heads captured, n, n) attention probabilities per layer\n"
    "  heatmaps/layer_XX_head_YY.png      one heatmap per captured (layer, head)\n"
    "  heatmaps/layer_XX_mean.png         the mean over the captured heads of each layer\n"
    "  viewer.html                        an interactive page of it all: open it in a browser\n"
    "The directory appears only when the run is complete; an existing one is replaced only if it is empty or an\n"
    "earlier attnviz output.\n"
    "\n"
    "options:\n"
    "  --model DIR          checkpoint: config.json, model.safetensors (or sharded index), tokenizer files\n"
    "  --prompt TEXT        the prompt (UTF-8)\n"
    "  --prompt-file FILE   read the prompt from FILE, byte for byte (a final newline is part of the prompt);\n"
    "                       - reads standard input\n"
    "  --out DIR            output directory\n"
    "  --layers LIST        layers to capture: all (default) or e.g. 0,3,5-7\n"
    "  --heads LIST         heads to capture in each captured layer: all (default) or a list\n"
    "  --device NAME        auto (default: cuda when a device exists), cpu or cuda\n"
    "  --dtype NAME         fp32 (default) or bf16 matmul inputs (cuda only; fp32 accumulation either way)\n"
    "  --attn-dtype NAME    fp32 (default), fp16 or bf16 device buffer for the probabilities (cuda only)\n"
    "  --attention KIND     auto (default: flash kernels for --dtype bf16 and head size 64 or 128), plain or flash\n"
    "  --png MODE           all (default), mean (head means only) or none\n"
    "  --capture LIST       what to keep of each captured layer, any of (comma-separated):\n"
    "                         full      P itself: attention/layer_XX.npy (default)\n"
    "                         rows:W    the last W query rows: layer_XX_rows.npy (heads, W, n)\n"
    "                         colsum    attention each key receives: layer_XX_colsum.npy and _colmean.npy (heads, n)\n"
    "                         pool:B    B x B block-pooled maps (rows still sum to 1): layer_XX_pool.npy\n"
    "                         headmean  mean and max over the captured heads: layer_XX_headmean.npy, _headmax.npy\n"
    "                         groupmean the same per key/value group (grouped-query attention):\n"
    "                                   layer_XX_groupmean.npy and _groupmax.npy (groups, n, n)\n"
    "  --packed-causal      write full P of a causal model as its packed lower triangle (half the bytes)\n"
    "  --viewer SIZE|off    viewer.html, the interactive page, holds at most SIZE bytes of attention (default 64M:\n"
    "                       column means, last rows, every layer's head mean, then heads in order, as they fit)\n"
    "  --max-memory SIZE    refuse runs needing more than SIZE bytes (suffixes K, M, G); default: what is free\n"
    "  --threads N          CPU threads (default: OpenMP's default, all cores)\n"
    "  --progress WHEN      auto (default: when standard error is a terminal), on or off: a line on standard error\n"
    "                       after each layer with the time spent and an estimate of the time left\n"
    "  --help               this text\n";

static const char *const tokenize_usage =
    "usage: attnviz tokenize --model DIR (--prompt TEXT | --prompt-file FILE) [--tokens]\n"
    "\n"
    "Prints the token ids of the prompt as one JSON array on stdout (--prompt-file - reads standard input). DIR\n"
    "needs only the tokenizer files\n"
    "(tokenizer.json, vocab.json + merges.txt, or vocab.txt).\n"
    "\n"
    "options:\n"
    "  --tokens   print a JSON array of {\"id\", \"token\", \"start\", \"end\"} objects instead\n"
    "  --help     this text\n";

static const char *const main_usage =
    "usage: attnviz COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run        capture attention of a checkpoint on a prompt: heatmaps, .npy dumps, meta.json\n"
    "  tokenize   print the token ids of a prompt\n"
    "\n"
    "  attnviz COMMAND --help   options of a command\n"
    "  attnviz --version        version\n"
    "\n"
    "exit codes: 0 success, 1 bad input (missing or malformed file, bad prompt), 2 usage error,\n"
    "            3 not enough memory, 4 CUDA device error or none present, 5 internal error\n";

static int exit_code(av_status st) {
    switch (st) {
    case AV_SUCCESS: return EXIT_OK;
    case AV_ERROR_INVALID_ARGUMENT: return EXIT_USAGE;
    case AV_ERROR_OUT_OF_MEMORY: return EXIT_MEMORY;
    case AV_ERROR_NO_DEVICE:
    case AV_ERROR_CUDA: return EXIT_DEVICE;
    case AV_ERROR_INTERNAL: return EXIT_INTERNAL;
    default: return EXIT_INPUT;
    }
}

static int fail(av_status st) {
    fprintf(stderr, "attnviz: %s\n", av_last_error());
    return exit_code(st);
}

static int usage_error(const char *usage, const char *message) {
    fprintf(stderr, "attnviz: %s\n%s", message, usage);
    return EXIT_USAGE;
}

typedef struct prompt_source {
    const char *text;
    const char *file;
} prompt_source;

// All of standard input (a pipe or a file), malloc'ed and NUL-terminated.
static av_status read_stdin(char **text, size_t *len) {
    size_t cap = 1 << 16, n = 0, got;
    char *buf = av_malloc(cap + 1, "prompt"), *grown;
    if (!buf) return AV_ERROR_OUT_OF_MEMORY;
    while ((got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n < cap) continue;
        if (!(grown = realloc(buf, 2 * cap + 1))) {
            free(buf);
            return av_fail(AV_ERROR_OUT_OF_MEMORY, "standard input: out of memory at %zu bytes", n);
        }
        buf = grown;
        cap *= 2;
    }
    if (ferror(stdin)) {
        free(buf);
        return av_fail(AV_ERROR_IO, "standard input: read error");
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return AV_SUCCESS;
}

// The prompt's bytes (malloc'ed) from --prompt or --prompt-file (- for standard input).
static av_status read_prompt(const prompt_source *p, char **text, size_t *len) {
    if (p->file && !strcmp(p->file, "-")) return read_stdin(text, len);
    if (p->file) return av_read_file(p->file, text, len);
    *len = strlen(p->text);
    *text = av_malloc(*len + 1, "prompt");
    if (!*text) return AV_ERROR_OUT_OF_MEMORY;
    memcpy(*text, p->text, *len + 1);
    return AV_SUCCESS;
}

static bool parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return false;
    double scale = 1;
    if (*end == 'K' || *end == 'k') scale = 1024.0;
    else if (*end == 'M' || *end == 'm') scale = 1024.0 * 1024;
    else if (*end == 'G' || *end == 'g') scale = 1024.0 * 1024 * 1024;
    else if (*end) return false;
    if (scale != 1 && end[1]) return false;
    if (v * scale >= (double)SIZE_MAX) return false;
    *out = (size_t)(v * scale);
    return *out > 0;
}

// --progress: the forward pass layer by layer on standard error, one line rewritten in place on a terminal, a line
// a layer otherwise. The time left assumes every layer costs what the finished ones did on average (a model's
// layers have the same shapes).
typedef struct progress_line {
    bool terminal;
    bool open;    // a terminal line is out without its newline
    double start_ms; // av_now_ms() when the forward pass began
} progress_line;

static void format_duration(char *out, size_t size, double seconds) {
    if (seconds < 60) snprintf(out, size, "%.1f s", seconds);
    else snprintf(out, size, "%d min %02d s", (int)(seconds / 60), (int)fmod(seconds, 60));
}

static void show_progress(void *user, int layers_done, int n_layers) {
    progress_line *p = user;
    if (layers_done == 0) p->start_ms = av_now_ms();
    if (layers_done == 0 && !p->terminal) return;
    double spent = (av_now_ms() - p->start_ms) / 1e3;
    char status[160], took[32], left[32];
    format_duration(took, sizeof took, spent);
    if (layers_done == 0) snprintf(status, sizeof status, "layer 0/%d", n_layers);
    else if (layers_done < n_layers) {
        format_duration(left, sizeof left, spent / layers_done * (n_layers - layers_done));
        snprintf(status, sizeof status, "layer %d/%d done, %s, about %s left", layers_done, n_layers, took, left);
    } else snprintf(status, sizeof status, "layer %d/%d done, %s", layers_done, n_layers, took);
    // \033[K clears what a longer earlier status left on the line.
    if (p->terminal) fprintf(stderr, "\rattnviz: %s\033[K%s", status, layers_done == n_layers ? "\n" : "");
    else fprintf(stderr, "attnviz: %s\n", status);
    p->open = p->terminal && layers_done < n_layers;
    fflush(stderr);
}

// --progress WHEN into *ON; false when WHEN is none of auto, on and off.
static bool parse_progress(const char *when, bool *on) {
    if (!strcmp(when, "auto")) *on = isatty(STDERR_FILENO);
    else if (!strcmp(when, "on")) *on = true;
    else if (!strcmp(when, "off")) *on = false;
    else return false;
    return true;
}

static int check_prompt_choice(const prompt_source *p, const char *usage) {
    if (!!p->text == !!p->file) return usage_error(usage, "give exactly one of --prompt and --prompt-file");
    return EXIT_OK;
}

static int command_run(int argc, char **argv) {
    enum { OPT_PROMPT_FILE = 256, OPT_ATTN_DTYPE, OPT_MAX_MEMORY, OPT_CAPTURE, OPT_PACKED, OPT_ATTENTION, OPT_VIEWER,
           OPT_PROGRESS };
    static const struct option options[] = {
        {"model", required_argument, NULL, 'm'},       {"prompt", required_argument, NULL, 'p'},
        {"prompt-file", required_argument, NULL, OPT_PROMPT_FILE},
        {"out", required_argument, NULL, 'o'},         {"layers", required_argument, NULL, 'l'},
        {"heads", required_argument, NULL, 'H'},       {"device", required_argument, NULL, 'd'},
        {"dtype", required_argument, NULL, 't'},       {"attn-dtype", required_argument, NULL, OPT_ATTN_DTYPE},
        {"png", required_argument, NULL, 'g'},         {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"threads", required_argument, NULL, 'j'},     {"capture", required_argument, NULL, OPT_CAPTURE},
        {"packed-causal", no_argument, NULL, OPT_PACKED}, {"attention", required_argument, NULL, OPT_ATTENTION},
        {"viewer", required_argument, NULL, OPT_VIEWER}, {"progress", required_argument, NULL, OPT_PROGRESS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    av_run_options opt;
    av_run_options_default(&opt);
    progress_line progress = {.terminal = isatty(STDERR_FILENO)};
    bool progress_on = progress.terminal;
    prompt_source prompt = {0};
    const char *model_dir = NULL, *out_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt.text = optarg; break;
        case OPT_PROMPT_FILE: prompt.file = optarg; break;
        case 'o': out_dir = optarg; break;
        case 'l': opt.layers = optarg; break;
        case 'H': opt.heads = optarg; break;
        case 'd': opt.device = optarg; break;
        case 't': opt.dtype = optarg; break;
        case OPT_ATTN_DTYPE: opt.attn_dtype = optarg; break;
        case 'g': opt.png = optarg; break;
        case OPT_CAPTURE: opt.capture = optarg; break;
        case OPT_PACKED: opt.packed_causal = 1; break;
        case OPT_ATTENTION: opt.attention = optarg; break;
        case OPT_MAX_MEMORY:
            if (!parse_size(optarg, &opt.max_memory)) return usage_error(run_usage, "--max-memory: expected a size");
            break;
        case OPT_PROGRESS:
            if (!parse_progress(optarg, &progress_on))
                return usage_error(run_usage, "--progress: expected auto, on or off");
            break;
        case OPT_VIEWER:
            if (!strcmp(optarg, "off")) opt.viewer_bytes = 0;
            else if (!parse_size(optarg, &opt.viewer_bytes))
                return usage_error(run_usage, "--viewer: expected a size or off");
            break;
        case 'j': {
            int threads = atoi(optarg);
            if (threads < 1) return usage_error(run_usage, "--threads: expected a positive number");
            omp_set_num_threads(threads); // the CPU backend's only pool: OpenBLAS runs inside its threads
            break;
        }
        case 'h': fputs(run_usage, stdout); return EXIT_OK;
        default: return usage_error(run_usage, "unknown option");
        }
    }
    if (optind < argc) return usage_error(run_usage, "unexpected argument");
    if (!model_dir || !out_dir) return usage_error(run_usage, "--model and --out are required");
    int code = check_prompt_choice(&prompt, run_usage);
    if (code) return code;
    if (progress_on) {
        opt.progress = show_progress;
        opt.progress_user = &progress;
    }

    char *text = NULL;
    size_t len = 0;
    av_status st = read_prompt(&prompt, &text, &len);
    if (st != AV_SUCCESS) return fail(st);
    av_model *model = NULL;
    st = av_model_load(&model, model_dir);
    if (st == AV_SUCCESS) st = av_run(model, text, len, &opt, out_dir);
    av_model_destroy(model);
    free(text);
    if (progress.open) fputc('\n', stderr); // the run failed mid-way: its message on a line of its own
    if (st != AV_SUCCESS) return fail(st);
    printf("attnviz: wrote %s\n", out_dir);
    return EXIT_OK;
}

static void print_tokens(const token_list *t, bool objects) {
    putchar('[');
    for (int i = 0; i < t->n; i++) {
        if (i) fputs(objects ? ",\n " : ", ", stdout);
        if (!objects) {
            printf("%d", t->ids[i]);
            continue;
        }
        printf("{\"id\": %d, \"token\": \"", t->ids[i]);
        for (const unsigned char *s = (const unsigned char *)t->display[i]; *s; s++) {
            if (*s == '"' || *s == '\\') printf("\\%c", *s);
            else if (*s < 0x20) printf("\\u%04x", *s);
            else putchar(*s);
        }
        printf("\", \"start\": %lld, \"end\": %lld}", (long long)t->starts[i], (long long)t->ends[i]);
    }
    puts("]");
}

static int command_tokenize(int argc, char **argv) {
    enum { OPT_PROMPT_FILE = 256 };
    static const struct option options[] = {{"model", required_argument, NULL, 'm'},
                                            {"prompt", required_argument, NULL, 'p'},
                                            {"prompt-file", required_argument, NULL, OPT_PROMPT_FILE},
                                            {"tokens", no_argument, NULL, 'k'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    prompt_source prompt = {0};
    const char *model_dir = NULL;
    bool objects = false;
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_dir = optarg; break;
        case 'p': prompt.text = optarg; break;
        case OPT_PROMPT_FILE: prompt.file = optarg; break;
        case 'k': objects = true; break;
        case 'h': fputs(tokenize_usage, stdout); return EXIT_OK;
        default: return usage_error(tokenize_usage, "unknown option");
        }
    }
    if (optind < argc) return usage_error(tokenize_usage, "unexpected argument");
    if (!model_dir) return usage_error(tokenize_usage, "--model is required");
    int code = check_prompt_choice(&prompt, tokenize_usage);
    if (code) return code;
    char *text = NULL;
    size_t len = 0;
    tokenizer *tok = NULL;
    token_list tokens = {0};
    av_status st = read_prompt(&prompt, &text, &len);
    if (st == AV_SUCCESS) st = tokenizer_load(&tok, model_dir);
    if (st == AV_SUCCESS) st = tokenizer_encode(tok, text, len, &tokens);
    if (st == AV_SUCCESS) print_tokens(&tokens, objects);
    token_list_free(&tokens);
    if (tok) tokenizer_destroy(tok);
    free(text);
    return st == AV_SUCCESS ? EXIT_OK : fail(st);
}

int main(int argc, char **argv) {
    if (argc < 2) return usage_error(main_usage, "no command given");
    const char *command = argv[1];
    if (!strcmp(command, "--version")) {
        printf("attnviz %s\n", av_version());
        return EXIT_OK;
    }
    if (!strcmp(command, "--help") || !strcmp(command, "-h")) {
        fputs(main_usage, stdout);
        return EXIT_OK;
    }
    // getopt_long sees the command's own arguments, with the command in argv[0]'s place.
    if (!strcmp(command, "run")) return command_run(argc - 1, argv + 1);
    if (!strcmp(command, "tokenize")) return command_tokenize(argc - 1, argv + 1);
    fprintf(stderr, "attnviz: unknown command '%s'\n%s", command, main_usage);
    return EXIT_USAGE;
}
