// The attnviz command line end to end: outputs, interop with numpy, and one test per kind of bad input.
#include "backend.h"
#include "render.h"
#include "safetensors.h"
#include "support.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const prompt0 =
    "Generate Python code for a function that calculates the factorial of a number.";

// Runs `attnviz ARGS`, returns the exit code, keeps the output in *text (may be NULL).
static int cli(char **text, const char *fmt, ...) {
    char args[8192], command[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(command, sizeof command, "'%s' %s", AV_CLI_PATH, args);
    return run_command(command, text);
}


// A failed run prints one line naming the problem, exits non-zero, and leaves neither OUT nor a temporary sibling.
static void expect_failure(const char *out_parent, int code, const char *needle, char *text) {
    cr_assert_neq(code, 0, "expected failure, got success: %s", text);
    cr_assert(strstr(text, needle), "message should mention '%s': %s", needle, text);
    size_t newlines = 0;
    for (const char *c = text; *c; c++) newlines += *c == '\n';
    cr_assert_eq(newlines, 1, "expected a one-line error, got: %s", text);
    cr_assert_eq(count_dir_entries(out_parent), 0, "output left behind in %s", out_parent);
    free(text);
}

// Runs a python3 -c COMMAND whose script prints "ok" once every assert in it held.
static void expect_python_ok(const char *command) {
    char *text;
    cr_assert_eq(run_command(command, &text), 0, "%s", text);
    cr_assert(strstr(text, "ok"), "%s", text);
    free(text);
}

// expect_python_ok on the outputs in the scratch directory DIR, then DIR removed and freed.
static void expect_python_ok_then_remove(const char *command, char *dir) {
    expect_python_ok(command);
    remove_tree(dir);
    free(dir);
}

// `attnviz run` on FIXTURE's prompt 0 (prompt0): the ids, offsets, next tokens and files in meta.json, and layer 1's
// .npy against Hugging Face's attentions.
static void expect_run_matches_fixture(const char *fixture) {
    char model[512], expected[512];
    snprintf(model, sizeof model, "%s/%s", AV_TEST_DATA_DIR, fixture);
    snprintf(expected, sizeof expected, "%s/%s-expected", AV_TEST_DATA_DIR, fixture);
    char *dir = make_scratch_dir("cli-run"), out[4200], path[4300], *text;
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(cli(&text, "run --model %s --prompt '%s' --out %s --device cpu", model, prompt0, out),
                 0, "%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/meta.json", out);
    cJSON *meta = read_json(path);
    cJSON *ids = cJSON_GetObjectItem(meta, "ids");
    snprintf(path, sizeof path, "%s/p0_ids.npy", expected);
    npy_array want_ids = npy_load(path);
    int T = cJSON_GetArraySize(ids);
    cr_assert_eq(T, (int)want_ids.numel);
    for (int i = 0; i < T; i++) cr_assert_eq(cJSON_GetArrayItem(ids, i)->valueint, ((int64_t *)want_ids.data)[i]);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "tokens")), T);
    cJSON *offsets = cJSON_GetObjectItem(meta, "offsets");
    cr_assert_eq(cJSON_GetArraySize(offsets), T);
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(offsets, T - 1), 1)->valueint, (int)strlen(prompt0));
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "device")->valuestring, "cpu");
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "model"), "n_layer")->valueint, 2);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "next_token")), 5);
    // Every file listed exists: 2 npy + 2 x (4 heads + mean) PNGs + viewer.html + meta.json.
    cJSON *files = cJSON_GetObjectItem(meta, "files");
    cr_assert_eq(cJSON_GetArraySize(files), 2 + 10 + 1 + 1);
    cJSON *f;
    cJSON_ArrayForEach(f, files) {
        snprintf(path, sizeof path, "%s/%s", out, f->valuestring);
        cr_assert(path_exists(path), "listed but missing: %s", path);
    }
    snprintf(path, sizeof path, "%s/attention/layer_01.npy", out);
    npy_array got = npy_load(path);
    cr_assert_eq(got.ndim, 3);
    cr_assert_eq(got.shape[0], 4);
    cr_assert_eq(got.shape[1], T);
    snprintf(path, sizeof path, "%s/p0_attn.npy", expected);
    npy_array want = npy_load(path);
    size_t layer = (size_t)4 * T * T;
    expect_close("layer 1 from the .npy", got.data, (const float *)want.data + layer, layer, 1e-5, 0, NULL);
    cJSON_Delete(meta);
    npy_free(&got);
    npy_free(&want);
    npy_free(&want_ids);
    remove_tree(dir);
    free(dir);
}

Test(cli, run_writes_meta_npy_and_heatmaps_matching_hugging_face) { expect_run_matches_fixture("gpt2-tiny"); }

// Llama-3's tokenizer puts <|begin_of_text|> first (an empty span); two query heads share each key/value head.
Test(cli, llama_run_matches_hugging_face) { expect_run_matches_fixture("llama-tiny"); }

// numpy reads the dump; the PNG's size is the renderer's documented layout.
Test(cli, numpy_loads_the_dump_and_png_has_the_layout_size) {
    cr_assert(AV_PYTHON[0], "no python3 found at configure time");
    char *dir = make_scratch_dir("cli-interop"), out[4200], *text;
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(cli(&text, "run --model %s --prompt '%s' --out %s --device cpu --layers 0 --heads 2",
                     FIXTURE("gpt2-tiny"), prompt0, out),
                 0, "%s", text);
    free(text);
    char path[4300];
    snprintf(path, sizeof path, "%s/meta.json", out);
    cJSON *meta = read_json(path);
    cJSON *tokens = cJSON_GetObjectItem(meta, "tokens");
    int T = cJSON_GetArraySize(tokens);
    const char **labels = malloc((size_t)T * sizeof *labels);
    for (int i = 0; i < T; i++) labels[i] = cJSON_GetArrayItem(tokens, i)->valuestring;
    float *values = calloc((size_t)T * T, sizeof(float));
    for (int i = 0; i < T; i++) values[(size_t)i * T] = 1.0f;
    heatmap_spec spec = {.values = values, .rows = T, .cols = T, .row_labels = labels, .col_labels = labels,
                         .title = "x", .mask_upper = true};
    heatmap_layout layout;
    cr_assert_eq(render_heatmap_layout(&spec, &layout), AV_SUCCESS);
    static char command[32768];
    snprintf(command, sizeof command,
             "'%s' -c \"import numpy as np, struct, sys\n"
             "a = np.load('%s/attention/layer_00.npy')\n"
             "assert a.dtype == np.float32 and a.shape == (1, %d, %d), a.shape\n"
             "assert np.allclose(a.sum(-1), 1, atol=1e-5) and np.all(np.triu(a[0], 1) == 0)\n"
             "h = open('%s/heatmaps/layer_00_head_02.png', 'rb').read(24)\n"
             "assert h[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
             "w, hh = struct.unpack('>II', h[16:24])\n"
             "assert (w, hh) == (%d, %d), (w, hh)\n"
             "import json; json.load(open('%s/meta.json', encoding='utf-8'))\n"
             "print('ok')\"",
             AV_PYTHON, out, T, T, out, layout.width, layout.height, out);
    expect_python_ok(command);
    snprintf(path, sizeof path, "%s/heatmaps/layer_00_head_00.png", out);
    cr_assert(!path_exists(path), "head 0 was not asked for");
    free(values);
    free(labels);
    cJSON_Delete(meta);
    remove_tree(dir);
    free(dir);
}

Test(cli, tokenize_prints_the_ids_as_json) {
    char *text;
    cr_assert_eq(cli(&text, "tokenize --model %s --prompt 'Hello world'", SHARED("data/gpt2-tokenizer")), 0, "%s",
                 text);
    cr_assert_str_eq(text, "[15496, 995]\n");
    free(text);
}

Test(cli, help_and_version_exit_zero) {
    char *text;
    cr_assert_eq(cli(&text, "--version"), 0);
    cr_assert(strstr(text, "attnviz 0."));
    free(text);
    cr_assert_eq(cli(&text, "run --help"), 0);
    cr_assert(strstr(text, "--prompt-file"));
    free(text);
    cr_assert_eq(cli(&text, "tokenize --help"), 0);
    cr_assert(strstr(text, "--tokens"));
    free(text);
    cr_assert_eq(cli(&text, "--help"), 0);
    cr_assert(strstr(text, "exit codes"));
    free(text);
    cr_assert_eq(cli(&text, "run --bogus"), 2);
    free(text);
}

// Each bad input: OUT stays absent, one line on stderr names the problem.
static char *scratch, out_dir[4200];

static void setup_bad(void) {
    scratch = make_scratch_dir("cli-bad");
    snprintf(out_dir, sizeof out_dir, "%s/results", scratch);
    char outs[4300];
    snprintf(outs, sizeof outs, "%s/outs", scratch);
    mkdir(outs, 0755);
    snprintf(out_dir, sizeof out_dir, "%s/outs/run", scratch);
}

static void teardown_bad(void) {
    remove_tree(scratch);
    free(scratch);
}

static char *outs_dir(void) {
    static char p[4300];
    snprintf(p, sizeof p, "%s/outs", scratch);
    return p;
}

// A private copy of a fixture to break.
static char *fixture_copy(const char *name) {
    static char dst[4300];
    snprintf(dst, sizeof dst, "%s/%s", scratch, name);
    char src[4300];
    snprintf(src, sizeof src, "%s/%s", AV_TEST_DATA_DIR, name);
    copy_tree(src, dst);
    return dst;
}

// Copies fixture NAME and writes the path of its FILE into PATH (4400 bytes); returns the copy's directory.
static char *fixture_copy_file(const char *name, const char *file, char *path) {
    char *m = fixture_copy(name);
    snprintf(path, 4400, "%s/%s", m, file);
    return m;
}

static void run_expect_failure(const char *model, const char *prompt_args, const char *needle) {
    char *text;
    int code = cli(&text, "run --model %s %s --out %s --device cpu", model, prompt_args, out_dir);
    expect_failure(outs_dir(), code, needle, text);
}

TestSuite(cli_bad_input, .init = setup_bad, .fini = teardown_bad);

Test(cli_bad_input, missing_model_directory) {
    run_expect_failure("/nonexistent/model", "--prompt hi", "/nonexistent/model");
}

Test(cli_bad_input, malformed_config_json) {
    char path[4400], *m = fixture_copy_file("gpt2-tiny", "config.json", path);
    write_bytes(path, "{\"model_type\": \"gpt2\", ", 23);
    run_expect_failure(m, "--prompt hi", "config.json");
}

Test(cli_bad_input, unknown_model_type) {
    char path[4400], *m = fixture_copy_file("gpt2-tiny", "config.json", path);
    const char *json = "{\"model_type\": \"mistral\", \"hidden_size\": 64}";
    write_bytes(path, json, strlen(json));
    run_expect_failure(m, "--prompt hi", "mistral");
}

Test(cli_bad_input, truncated_safetensors) {
    char path[4400], *m = fixture_copy_file("gpt2-tiny", "model.safetensors", path);
    cr_assert_eq(truncate(path, 5000), 0);
    run_expect_failure(m, "--prompt hi", "model.safetensors");
}

// Sets KEY of the JSON object in MODEL_DIR/FILE to VALUE.
static void set_json_number(const char *model_dir, const char *file, const char *key, double value) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", model_dir, file);
    cJSON *object = read_json(path);
    cJSON_ReplaceItemInObject(object, key, cJSON_CreateNumber(value));
    char *json = cJSON_PrintUnformatted(object);
    write_bytes(path, json, strlen(json));
    free(json);
    cJSON_Delete(object);
}

// A copy of FIXTURE with KEY of its FILE (a JSON object) set to VALUE fails on PROMPT_ARGS with NEEDLE.
static void expect_json_edit_refused(const char *fixture, const char *file, const char *key, double value,
                                     const char *prompt_args, const char *needle) {
    char *m = fixture_copy(fixture);
    set_json_number(m, file, key, value);
    run_expect_failure(m, prompt_args, needle);
}

// The config promises a third layer the sharded checkpoint does not have.
Test(cli_bad_input, missing_tensor) {
    expect_json_edit_refused("gpt2-tiny-sharded", "config.json", "n_layer", 4, "--prompt hi", "h.3.ln_1.weight");
}

Test(cli_bad_input, missing_tokenizer_files) {
    char path[4400], *m = fixture_copy_file("gpt2-tiny", "vocab.json", path);
    cr_assert_eq(unlink(path), 0);
    run_expect_failure(m, "--prompt hi", "vocab.json");
}

// A tokenizer whose vocabulary outgrows the model's embedding table: "<|endoftext|>" at id 5000 of 1157.
Test(cli_bad_input, token_id_beyond_the_embedding_table) {
    expect_json_edit_refused("gpt2-tiny", "vocab.json", "<|endoftext|>", 5000, "--prompt 'hi<|endoftext|>'",
                             "id 5000 outside the vocabulary (vocab_size 1157)");
}

// A copy of gpt2-tiny with a NaN in layer 1's attention weights; returns its directory.
static char *fixture_with_nan_in_layer_1(void) {
    char path[4400], *m = fixture_copy_file("gpt2-tiny", "model.safetensors", path);
    st_checkpoint ck;
    cr_assert_eq(st_file_open(&ck, path), AV_SUCCESS, "%s", av_last_error());
    const st_tensor *t = st_find(&ck, "transformer.h.1.attn.c_attn.weight");
    cr_assert_not_null(t);
    long offset = (long)((const char *)t->data - (const char *)ck.files[0].base);
    st_checkpoint_close(&ck);
    float nan = NAN;
    FILE *f = fopen(path, "r+b");
    cr_assert(f && fseek(f, offset, SEEK_SET) == 0 && fwrite(&nan, sizeof nan, 1, f) == 1 && fclose(f) == 0);
    return m;
}

// The run stops at layer 1 with one line naming the layer, and writes nothing.
Test(cli_bad_input, nan_in_the_weights) {
    run_expect_failure(fixture_with_nan_in_layer_1(), "--prompt 'hello world'",
                       "layer 1 head 0, query 0: attention nan is not a number");
}

// --progress on: a line a layer (standard error is a pipe here), the time left estimated until the last; auto, the
// default, prints nothing but the result where standard error is not a terminal.
Test(cli_bad_input, progress_reports_each_layer) {
    char *text, wrote[4400];
    int code = cli(&text, "run --model %s --prompt 'hello world' --out %s --device cpu --progress on",
                   FIXTURE("gpt2-tiny"), out_dir);
    cr_assert_eq(code, 0, "%s", text);
    const char *first = strstr(text, "attnviz: layer 1/2 done, "), *last = strstr(text, "attnviz: layer 2/2 done, ");
    cr_assert(first && last && first < last, "%s", text);
    cr_assert(strstr(first, " left\n") < last, "layer 1 of 2 should estimate the time left: %s", text);
    cr_assert(!strstr(last, "left") && !strstr(text, "layer 0/"), "%s", text);
    snprintf(wrote, sizeof wrote, "attnviz: wrote %s\n", out_dir);
    cr_assert(strstr(text, wrote), "%s", text);
    free(text);
    cr_assert_eq(cli(&text, "run --model %s --prompt 'hello world' --out %s --device cpu", FIXTURE("gpt2-tiny"),
                     out_dir), 0);
    cr_assert_str_eq(text, wrote);
    free(text);
    cr_assert_eq(cli(&text, "run --model %s --prompt hi --out %s --progress sometimes", FIXTURE("gpt2-tiny"),
                     out_dir), 2, "%s", text);
    cr_assert(strstr(text, "--progress: expected auto, on or off"), "%s", text);
    free(text);
}

// On a terminal (script(1) gives the run one) the status is one line rewritten in place; a run that fails mid-way
// ends that line before its message, and leaves nothing behind.
Test(cli_bad_input, progress_on_a_terminal_ends_its_line_before_a_failure) {
    char command[9000], *text;
    snprintf(command, sizeof command, "script -qec \"'%s' run --model '%s' --prompt hi --out '%s' --device cpu\" "
             "/dev/null", AV_CLI_PATH, fixture_with_nan_in_layer_1(), out_dir);
    int code = run_command(command, &text);
    cr_assert_eq(code, 1, "%s", text);
    const char *status = strstr(text, "\rattnviz: layer 1/2 done, ");
    const char *message = strstr(text, "attnviz: gpt2-tiny: layer 1 head");
    cr_assert(status && message && status < message, "%s", text);
    cr_assert(strstr(status, "\033[K"), "%s", text);
    cr_assert(message[-1] == '\n', "the failure's message should start its own line: %s", text);
    cr_assert_eq(count_dir_entries(outs_dir()), 0, "output left behind");
    free(text);
}

// --prompt-file - reads standard input to its end, byte for byte: the same tokens (with their byte offsets) as the
// file itself, for a prompt with a newline and one of 70,000 bytes (past the first 64 KB read).
static void expect_stdin_like_file(const char *name, const char *data, size_t len) {
    char *dir = make_scratch_dir("cli-stdin"), path[4400], command[9000], *from_file, *from_stdin;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_bytes(path, data, len);
    snprintf(command, sizeof command, "'%s' tokenize --model '%s' --tokens --prompt-file '%s'", AV_CLI_PATH,
             FIXTURE("gpt2-tiny"), path);
    cr_assert_eq(run_command(command, &from_file), 0, "%s", from_file);
    snprintf(command, sizeof command, "cat '%s' | '%s' tokenize --model '%s' --tokens --prompt-file -", path,
             AV_CLI_PATH, FIXTURE("gpt2-tiny"));
    cr_assert_eq(run_command(command, &from_stdin), 0, "%s", from_stdin);
    cr_assert_str_eq(from_stdin, from_file);
    free(from_file);
    free(from_stdin);
    remove_tree(dir);
    free(dir);
}

Test(cli, prompt_from_standard_input) {
    expect_stdin_like_file("short.txt", "one two\nthree ", 14);
    size_t len = 70000;
    char *text = malloc(len);
    for (size_t i = 0; i < len; i++) text[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 5);
    expect_stdin_like_file("long.txt", text, len);
    free(text);
}

Test(cli_bad_input, empty_prompt) { run_expect_failure(FIXTURE("gpt2-tiny"), "--prompt ''", "empty prompt"); }

// A prompt file of LEN bytes of DATA is refused with NEEDLE.
static void expect_prompt_file_refused(const char *name, const char *data, size_t len, const char *needle) {
    char path[4400], args[4500];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    write_bytes(path, data, len);
    snprintf(args, sizeof args, "--prompt-file %s", path);
    run_expect_failure(FIXTURE("gpt2-tiny"), args, needle);
}

Test(cli_bad_input, prompt_longer_than_n_positions) {
    // gpt2-tiny has 128 positions; 200 single-letter words are 200+ tokens.
    char text[1200] = "";
    for (int i = 0; i < 200; i++) strcat(text, " q");
    expect_prompt_file_refused("long.txt", text, strlen(text), "longer than the 128 positions");
}

Test(cli_bad_input, prompt_longer_than_max_position_embeddings) {
    // llama-tiny has 160 positions; rotary positions have no table, the config's limit still holds.
    char text[1200], args[1400];
    text[0] = '\0';
    for (int i = 0; i < 200; i++) strcat(text, " q");
    snprintf(args, sizeof args, "--prompt '%s'", text);
    run_expect_failure(FIXTURE("llama-tiny"), args, "longer than the 160 positions");
}

// meta.json and viewer.html hold the prompt as text: a NUL byte would cut it short there, so it is refused.
Test(cli_bad_input, nul_byte_in_prompt_file) {
    expect_prompt_file_refused("nul.txt", "Hi\0there", 8, "NUL byte at offset 2");
}

Test(cli_bad_input, invalid_utf8_prompt_file) { expect_prompt_file_refused("bad.txt", "ab\xff\xfe", 4, "UTF-8"); }

Test(cli_bad_input, missing_prompt_file) {
    run_expect_failure(FIXTURE("gpt2-tiny"), "--prompt-file /nonexistent/prompt.txt", "/nonexistent/prompt.txt");
}

Test(cli_bad_input, not_enough_memory_is_refused_with_the_numbers_and_a_hint) {
    char *text;
    int code = cli(&text, "run --model %s --prompt '%s' --out %s --device cpu --max-memory 16K",
                   FIXTURE("gpt2-tiny"), prompt0, out_dir);
    cr_assert_eq(code, 3, "exit code %d: %s", code, text);
    cr_assert(strstr(text, "GiB") && strstr(text, "--heads"), "%s", text);
    expect_failure(outs_dir(), code, "available", text);
}

Test(cli_bad_input, foreign_output_directory_is_not_replaced) {
    char keep[4400], *text;
    mkdir(out_dir, 0755);
    snprintf(keep, sizeof keep, "%s/precious.txt", out_dir);
    write_bytes(keep, "x", 1);
    int code = cli(&text, "run --model %s --prompt hi --out %s --device cpu", FIXTURE("gpt2-tiny"), out_dir);
    cr_assert_neq(code, 0);
    cr_assert(strstr(text, "not an attnviz output"), "%s", text);
    free(text);
    cr_assert(path_exists(keep));
    cr_assert_eq(count_dir_entries(outs_dir()), 1, "a temporary directory was left behind");
}

Test(cli_bad_input, earlier_output_is_replaced_whole) {
    char *text, stale[4400];
    cr_assert_eq(cli(&text, "run --model %s --prompt hi --out %s --device cpu", FIXTURE("gpt2-tiny"), out_dir), 0,
                 "%s", text);
    free(text);
    snprintf(stale, sizeof stale, "%s/stale.txt", out_dir);
    write_bytes(stale, "x", 1);
    cr_assert_eq(cli(&text, "run --model %s --prompt hi --out %s --device cpu --layers 1 --png none",
                     FIXTURE("gpt2-tiny"), out_dir),
                 0, "%s", text);
    free(text);
    cr_assert(!path_exists(stale), "the earlier output should be replaced, not merged");
    cr_assert_eq(count_dir_entries(outs_dir()), 1);
}

// Every --capture kind against numpy computing the same reduction from Hugging Face's attentions independently. With
// full (and --packed-causal) the host reduces each layer's full P; without it the CPU's attention takes the
// reductions block by block (meta.json: "attention").
static void expect_capture_matches_hugging_face(const char *capture, const char *heads, const char *reductions) {
    char *dir = make_scratch_dir("cli-capture"), out[4200], *text;
    bool full = strstr(capture, "full") != NULL;
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(cli(&text, "run --model %s --prompt '%s' --out %s --device cpu --layers 1 --heads %s "
                            "--capture %s %s --png mean",
                     FIXTURE("gpt2-tiny"), prompt0, out, heads, capture, full ? "--packed-causal" : ""),
                 0, "%s", text);
    free(text);
    static char command[32768];
    snprintf(command, sizeof command,
             "'%s' -c \"import json, numpy as np\n"
             "d = '%s/attention/'\n"
             "P = np.load('%s')[1][[%s]].astype(np.float64)\n"
             "NS, T, _ = P.shape\n"
             "def close(name, got, want):\n"
             "    assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape, want.shape)\n"
             "    err = np.abs(got - want).max()\n"
             "    assert err <= 1e-5, (name, err)\n"
             "i, j = np.tril_indices(T)\n"
             "if %d: close('packed', np.load(d + 'layer_01.npy'), P[:, i, j])\n"
             "close('rows', np.load(d + 'layer_01_rows.npy'), P[:, T - 5:, :])\n"
             "close('colsum', np.load(d + 'layer_01_colsum.npy'), P.sum(1))\n"
             "close('colmean', np.load(d + 'layer_01_colmean.npy'), P.sum(1) / (T - np.arange(T)))\n"
             "nb = -(-T // 4)\n"
             "pad = np.zeros((NS, nb * 4, nb * 4)); pad[:, :T, :T] = P\n"
             "counts = np.minimum(4, T - 4 * np.arange(nb))\n"
             "pool = pad.reshape(NS, nb, 4, nb, 4).sum((2, 4)) / counts[None, :, None]\n"
             "close('pool', np.load(d + 'layer_01_pool.npy'), pool)\n"
             "close('headmean', np.load(d + 'layer_01_headmean.npy'), P.mean(0))\n"
             "close('headmax', np.load(d + 'layer_01_headmax.npy'), P.max(0))\n"
             "meta = json.load(open('%s/meta.json', encoding='utf-8'))\n"
             "kinds = [k['kind'] for k in meta['captured']['kinds']]\n"
             "assert kinds == ['full'] * %d + ['rows', 'colsum', 'pool', 'headmean'], kinds\n"
             "assert meta['captured']['reductions'] == '%s', meta['captured']['reductions']\n"
             "for f in meta['files']:\n"
             "    open('%s/' + f, 'rb').close()\n"
             "print('ok')\"",
             AV_PYTHON, out, FIXTURE("gpt2-tiny-expected/p0_attn.npy"), heads, full, out, full, reductions, out);
    expect_python_ok_then_remove(command, dir);
}

Test(cli, capture_kinds_match_numpy_reductions_of_hugging_face_attentions) {
    expect_capture_matches_hugging_face("full,rows:5,colsum,pool:4,headmean", "0,2,3", "host");
    expect_capture_matches_hugging_face("rows:5,colsum,pool:4,headmean", "0,1,2,3", "attention");
    expect_capture_matches_hugging_face("rows:5,colsum,pool:4,headmean", "0,2,3", "attention"); // a subset's mean
}

// --capture groupmean against numpy's mean and max over each key/value group of Hugging Face's attentions (qwen2-tiny:
// six query heads on two key/value heads, groups 0-2 and 3-5), over the captured heads of each group.
static void expect_group_means_match_hugging_face(const char *capture, const char *heads, const char *reductions) {
    char *dir = make_scratch_dir("cli-groupmean"), out[4200], *text;
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(cli(&text, "run --model %s --prompt '%s' --out %s --device cpu --layers 1 --heads %s "
                            "--capture %s --png mean",
                     FIXTURE("qwen2-tiny"), prompt0, out, heads, capture),
                 0, "%s", text);
    free(text);
    static char command[32768];
    snprintf(command, sizeof command,
             "'%s' -c \"import json, numpy as np\n"
             "P = np.load('%s')[1].astype(np.float64)\n"
             "heads = [%s]\n"
             "groups = [[h for h in range(3 * g, 3 * g + 3) if h in heads] for g in range(2)]\n"
             "for name, f in (('groupmean', np.mean), ('groupmax', np.max)):\n"
             "    got = np.load('%s/attention/layer_01_' + name + '.npy')\n"
             "    want = np.stack([f(P[g], axis=0) for g in groups])\n"
             "    assert got.dtype == np.float32 and got.shape == want.shape, (name, got.shape, want.shape)\n"
             "    err = np.abs(got - want).max()\n"
             "    assert err <= 1e-5, (name, err)\n"
             "meta = json.load(open('%s/meta.json', encoding='utf-8'))\n"
             "kind = meta['captured']['kinds'][-1]\n"
             "assert (kind['kind'], kind['groups'], kind['heads_per_group']) == ('groupmean', 2, 3), kind\n"
             "assert meta['captured']['reductions'] == '%s', meta['captured']['reductions']\n"
             "pngs = [f for f in meta['files'] if 'group' in f and f.endswith('.png')]\n"
             "assert pngs == ['heatmaps/layer_01_group_00.png', 'heatmaps/layer_01_group_01.png'], pngs\n"
             "print('ok')\"",
             AV_PYTHON, FIXTURE("qwen2-tiny-expected/p0_attn.npy"), heads, out, out, reductions);
    expect_python_ok_then_remove(command, dir);
}

Test(cli, group_means_match_numpy_reductions_of_hugging_face_attentions) {
    expect_group_means_match_hugging_face("groupmean", "0,1,2,3,4,5", "attention");
    expect_group_means_match_hugging_face("groupmean,headmean,rows:3", "0,1,2,3,4,5", "attention");
    expect_group_means_match_hugging_face("groupmean", "1,3,5", "attention");
    expect_group_means_match_hugging_face("full,groupmean", "2,3", "host");
    expect_group_means_match_hugging_face("full,groupmean", "0,1,2,3,4,5", "host");
}

// A prompt whose full maps do not fit in --max-memory still runs when only reductions are captured: the CPU's
// attention keeps one block of query rows per thread, never a head's T x T map. llama-tiny (rotary: no position table)
// with its position limit raised to 4096, about 3000 tokens: full P is 4 heads x 3000^2 floats (137 MiB) a layer.
Test(cli, long_prompt_reductions_run_where_full_maps_do_not_fit) {
    char *dir = make_scratch_dir("cli-long"), model[4200], prompt[4200], out[4200], full_out[4200], *text;
    snprintf(model, sizeof model, "%s/llama-tiny", dir);
    snprintf(prompt, sizeof prompt, "%s/prompt.txt", dir);
    snprintf(out, sizeof out, "%s/reduced", dir);
    snprintf(full_out, sizeof full_out, "%s/full", dir);
    copy_tree(FIXTURE("llama-tiny"), model);
    static char command[32768];
    snprintf(command, sizeof command, "sed -i 's/\"max_position_embeddings\": 160/\"max_position_embeddings\": 4096/' "
             "'%s/config.json'", model);
    cr_assert_eq(run_command(command, NULL), 0);
    static char text_in[3000 * 6];
    text_in[0] = '\0';
    for (int i = 0; i < 3000; i++) strcat(text_in, i % 7 ? " the" : " cat.");
    write_bytes(prompt, text_in, strlen(text_in));
    const char *reduce = "--capture pool:64,colsum,rows:2 --png none --viewer off --threads 2";
    cr_assert_eq(cli(&text, "run --model %s --prompt-file %s --out %s --device cpu --max-memory 64M %s", model, prompt,
                     out, reduce),
                 0, "%s", text);
    free(text);
    int code = cli(&text, "run --model %s --prompt-file %s --out %s --device cpu --max-memory 64M --capture full "
                          "--png none", model, prompt, full_out);
    cr_assert_eq(code, 3, "exit %d: %s", code, text);
    cr_assert(strstr(text, "attention per layer"), "%s", text);
    free(text);
    // The same reductions from full P on the host (no memory limit): the same bits, column sums within 1e-6.
    cr_assert_eq(cli(&text, "run --model %s --prompt-file %s --out %s --device cpu --layers 1 --png none --viewer off "
                            "--capture full,pool:64,colsum,rows:2 --threads 2", model, prompt, full_out),
                 0, "%s", text);
    free(text);
    snprintf(command, sizeof command,
             "'%s' -c \"import json, numpy as np\n"
             "a, b = '%s/', '%s/'\n"
             "meta = json.load(open(a + 'meta.json'))\n"
             "assert meta['n_tokens'] > 2900 and meta['captured']['reductions'] == 'attention', meta['captured']\n"
             "assert json.load(open(b + 'meta.json'))['captured']['reductions'] == 'host'\n"
             "for name in ['pool', 'rows', 'colsum', 'colmean']:\n"
             "    x, y = (np.load(d + 'attention/layer_01_' + name + '.npy') for d in (a, b))\n"
             "    assert x.shape == y.shape, (name, x.shape, y.shape)\n"
             "    err = np.abs(x - y).max()\n"
             "    assert err <= 1e-6 * max(1, np.abs(y).max()) and (err == 0 or name.startswith('col')), (name, err)\n"
             "print('ok', meta['n_tokens'])\"",
             AV_PYTHON, out, full_out);
    expect_python_ok_then_remove(command, dir);
}

Test(cli_bad_input, malformed_capture_lists_are_usage_errors) {
    const char *bad[] = {"pool", "pool:0", "rows:x", "colsum:3", "fancy", "full,", "rows:5,pool:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text;
        int code = cli(&text, "run --model %s --prompt hi --out %s --device cpu --capture '%s'", FIXTURE("gpt2-tiny"),
                       out_dir, bad[i]);
        cr_assert_eq(code, 2, "--capture %s: exit %d: %s", bad[i], code, text);
        cr_assert(strstr(text, "--capture"), "%s", text);
        free(text);
    }
    cr_assert_eq(count_dir_entries(outs_dir()), 0);
}

Test(cli_bad_input, group_mean_needs_a_captured_head_in_every_group) {
    char *text;
    int code = cli(&text, "run --model %s --prompt hi --out %s --device cpu --capture groupmean --heads 0,2",
                   FIXTURE("qwen2-tiny"), out_dir);
    expect_failure(outs_dir(), code, "key/value group 1 (heads 3-5) has no captured head", text);
}

Test(cli_bad_input, packed_causal_needs_full_and_a_causal_model) {
    char *text;
    int code = cli(&text, "run --model %s --prompt hi --out %s --device cpu --capture pool:2 --packed-causal",
                   FIXTURE("gpt2-tiny"), out_dir);
    expect_failure(outs_dir(), code, "--packed-causal", text);
    code = cli(&text, "run --model %s --prompt hi --out %s --device cpu --packed-causal", FIXTURE("bert-tiny"),
               out_dir);
    expect_failure(outs_dir(), code, "not causal", text);
}

// --device auto (the default) picks cuda exactly when a device exists, and meta.json says which ran.
Test(cli, default_device_is_cuda_when_present_else_cpu) {
    char *dir = make_scratch_dir("cli-auto"), out[4200], path[4300], *text;
    snprintf(out, sizeof out, "%s/out", dir);
    cr_assert_eq(cli(&text, "run --model %s --prompt hi --out %s --png none --threads 1", FIXTURE("gpt2-tiny"), out),
                 0, "%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/meta.json", out);
    cJSON *meta = read_json(path);
    cr_assert_str_eq(cJSON_GetObjectItem(meta, "device")->valuestring, backend_cuda_available() ? "cuda" : "cpu");
    cJSON_Delete(meta);
    remove_tree(dir);
    free(dir);
}
