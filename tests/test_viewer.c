// viewer.html end to end: the CLI writes it beside the .npy files, and its script, run in node by
// tests/viewer_check.js, shows every embedded map's rows and columns as the .npy files hold them (to float16), the
// head means, the last rows and column means of runs without full P, the strongest weights in order, and the
// prompt's text; the budget decides which maps go in.
#include "support.h"
#include "viewer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A prompt that would break a page that pasted it into HTML, with characters split among byte-level BPE tokens.
static const char *const tricky_prompt =
    "Hello </script><script>alert(1)</script> world <!-- caf\xc3\xa9 \xf0\x9f\x98\x80!";

// Runs `attnviz run --model MODEL --out DIR/out ARGS` (prompt included in ARGS); returns the exit code.
static int run_cli(const char *dir, const char *model, const char *args, char **text) {
    char command[8192];
    snprintf(command, sizeof command, "'%s' run --model '%s' --out '%s/out' --device cpu %s", AV_CLI_PATH, model, dir,
             args);
    return run_command(command, text);
}

// tests/viewer_check.js on DIR/out: its output, after checking that it passed.
static char *check_in_node(const char *dir) {
    char command[8192], *text;
    snprintf(command, sizeof command, "command -v node >/dev/null || { echo 'node not found (tests/run.sh installs "
             "nodejs)'; exit 1; }; node '%s/tests/viewer_check.js' '%s/out'", AV_SOURCE_DIR, dir);
    int code = run_command(command, &text);
    cr_assert_eq(code, 0, "viewer_check.js failed: %s", text);
    cr_assert(strstr(text, "tokens ok"), "%s", text);
    return text;
}

static bool lists_file(const char *dir, const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/out/meta.json", dir);
    cJSON *meta = read_json(path), *f;
    bool found = false;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(meta, "files")) found |= !strcmp(f->valuestring, name);
    cJSON_Delete(meta);
    return found;
}

static void expect_viewer(const char *tag, const char *model, const char *args, const char *maps) {
    char *dir = make_scratch_dir(tag), *text;
    int code = run_cli(dir, model, args, &text);
    cr_assert_eq(code, 0, "%s", text);
    free(text);
    cr_assert(lists_file(dir, "viewer.html"), "meta.json does not list viewer.html");
    text = check_in_node(dir);
    cr_assert(strstr(text, maps), "embedded %s, want %s", text, maps);
    free(text);
    remove_tree(dir);
    free(dir);
}

Test(viewer, causal_model_every_map_and_the_prompt_survive_html) {
    char args[512];
    snprintf(args, sizeof args, "--prompt '%s'", tricky_prompt);
    expect_viewer("viewer-gpt2", FIXTURE("gpt2-tiny"), args, "maps 0:-1 0:0 0:1 0:2 0:3 1:-1 1:0 1:1 1:2 1:3\n");
}

// Non-causal, special tokens, whitespace between WordPiece tokens, and a Hangul syllable whose jamo share its bytes.
Test(viewer, encoder_with_special_tokens_and_gaps) {
    expect_viewer("viewer-bert", FIXTURE("bert-tiny"),
                  "--prompt 'The cat sat on the mat. \xed\x95\x9c\xea\xb5\xad </script>'",
                  "maps 0:-1 0:0 0:1 0:2 0:3 1:-1 1:0 1:1 1:2 1:3\n");
}

// The budget takes every layer's head mean first, then heads in order: room for three maps of this prompt keeps
// both means and layer 0's head 0. Without PNGs the mean is computed for the viewer alone.
Test(viewer, budget_keeps_the_means_first) {
    const char *prompt = "Hello world, once more";
    char *dir = make_scratch_dir("viewer-tokens"), command[4096], *text;
    snprintf(command, sizeof command, "'%s' tokenize --model '%s' --prompt '%s'", AV_CLI_PATH, FIXTURE("gpt2-tiny"),
             prompt);
    cr_assert_eq(run_command(command, &text), 0, "%s", text);
    cJSON *ids = cJSON_Parse(text);
    int T = cJSON_GetArraySize(ids);
    cJSON_Delete(ids);
    free(text);
    remove_tree(dir);
    free(dir);
    char args[512];
    size_t map = viewer_map_chars(T, true);
    snprintf(args, sizeof args, "--prompt '%s' --png none --viewer %zu", prompt, 3 * map + map / 2);
    expect_viewer("viewer-budget", FIXTURE("gpt2-tiny"), args, "maps 0:-1 0:0 1:-1\n");
}

static void expect_no_viewer(const char *tag, const char *args) {
    char *dir = make_scratch_dir(tag), *text, path[4200];
    int code = run_cli(dir, FIXTURE("gpt2-tiny"), args, &text);
    cr_assert_eq(code, 0, "%s", text);
    free(text);
    snprintf(path, sizeof path, "%s/out/viewer.html", dir);
    cr_assert(!path_exists(path), "%s: viewer.html written", args);
    cr_assert(!lists_file(dir, "viewer.html"), "%s: viewer.html listed", args);
    remove_tree(dir);
    free(dir);
}

Test(viewer, off_there_is_none) { expect_no_viewer("viewer-off", "--prompt hi --viewer off"); }

// Without full P the page shows what was captured: the last rows (from those tokens), every key's column mean
// (received), the head mean (from and to every token), full P as the packed triangle.
Test(viewer, what_the_other_kinds_hold) {
    expect_viewer("viewer-rows", FIXTURE("gpt2-tiny"),
                  "--prompt 'Hello world, once more and again' --capture rows:3,colsum", "maps \n");
    expect_viewer("viewer-headmean", FIXTURE("bert-tiny"),
                  "--prompt 'The cat sat on the mat.' --capture headmean,colsum", "maps 0:-1 1:-1\n");
    expect_viewer("viewer-packed", FIXTURE("gpt2-tiny"), "--prompt 'The cat sat on the mat.' --packed-causal --heads 1",
                  "maps 0:1 1:1\n");
    expect_viewer("viewer-subset", FIXTURE("gpt2-tiny"), "--prompt 'The cat sat on the mat.' --layers 1 --heads 2,3",
                  "maps 1:-1 1:2 1:3\nleft out: none\n");
}

// A head of a grouped-query model shows its key/value group's mean map when the run has nothing of its own
// (qwen2-tiny: heads 0-2 and 3-5 share a key/value head each).
Test(viewer, group_means_show_for_their_heads) {
    expect_viewer("viewer-groupmean", FIXTURE("qwen2-tiny"),
                  "--prompt 'The cat sat on the mat.' --layers 1 --heads 1,4 --capture groupmean",
                  "heatmaps shown: heatmaps/layer_01_group_00.png heatmaps/layer_01_group_01.png\n");
}

// 10 tokens, 2 layers of 4 heads: the column means take 8 x 28 characters, the last 3 rows 8 x 80, so 300 bytes
// keep the column means and leave the rows out.
Test(viewer, budget_takes_column_means_before_rows) {
    expect_viewer("viewer-budget-rows", FIXTURE("gpt2-tiny"),
                  "--prompt 'Hello world, once more and again' --capture rows:3,colsum --viewer 300",
                  "maps \nleft out: rows\n");
}

Test(viewer, a_bad_budget_is_a_usage_error) {
    char *dir = make_scratch_dir("viewer-bad"), *text;
    static const char *const bad[] = {"lots", "nan", "inf", "1e30", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[128];
        snprintf(args, sizeof args, "--prompt hi --viewer %s", bad[i]);
        int code = run_cli(dir, FIXTURE("gpt2-tiny"), args, &text);
        cr_assert_eq(code, 2, "--viewer %s: exit %d: %s", bad[i], code, text);
        cr_assert(strstr(text, "--viewer: expected a size or off"), "%s", text);
        free(text);
    }
    remove_tree(dir);
    free(dir);
}
