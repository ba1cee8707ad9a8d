#include "viewer.h"

#include "half.h"

#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------- writing helpers

// JSON inside <script>: every '<' as \u003c, so that no text of the prompt ("</script>", "<!--") can end or bend
// the script element. '<' never occurs in JSON outside strings.
static bool put_script_json(FILE *f, const cJSON *item) {
    char *json = cJSON_PrintUnformatted(item);
    if (!json) return false;
    bool ok = true;
    for (const char *c = json; *c && ok; c++) ok = *c == '<' ? fputs("\\u003c", f) >= 0 : fputc(*c, f) != EOF;
    free(json);
    return ok;
}

static const char base64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64 of a byte stream, three bytes at a time, written out in blocks.
typedef struct base64_stream {
    FILE *f;
    unsigned char group[3];
    int n;
    size_t used;
    char out[1 << 16];
} base64_stream;

static void base64_write_out(base64_stream *b) {
    fwrite(b->out, 1, b->used, b->f);
    b->used = 0;
}

static void base64_flush_group(base64_stream *b) {
    unsigned bits = (unsigned)b->group[0] << 16 | (unsigned)(b->n > 1 ? b->group[1] : 0) << 8 |
                    (unsigned)(b->n > 2 ? b->group[2] : 0);
    for (int k = 0; k < 4; k++) b->out[b->used++] = k <= b->n ? base64_digits[(bits >> (18 - 6 * k)) & 63] : '=';
    b->n = 0;
    if (b->used + 4 > sizeof b->out) base64_write_out(b);
}

static void base64_put(base64_stream *b, unsigned char byte) {
    b->group[b->n++] = byte;
    if (b->n == 3) base64_flush_group(b);
}

static void base64_finish(base64_stream *b) {
    if (b->n) base64_flush_group(b);
    base64_write_out(b);
}

static size_t base64_chars(size_t elems) { return 4 * ((2 * elems + 2) / 3); }

size_t viewer_map_chars(int T, bool causal) {
    size_t t = (size_t)T;
    return base64_chars(causal ? t * (t + 1) / 2 : t * t);
}

// <script>CALL, '...');</script> with X (ROWS, COLS) as float16 base64, only the lower triangle (row i: columns
// 0..i) when LOWER.
static bool put_f16(const viewer_file *v, const char *call, const float *x, int rows, int cols, bool lower) {
    fprintf(v->f, "<script>%s, '", call);
    base64_stream b; // 64 KB on the stack; its block is not cleared, only filled
    b.f = v->f;
    b.n = 0;
    b.used = 0;
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < (lower ? i + 1 : cols); j++) {
            uint16_t h = av_f32_to_f16(x[(size_t)i * cols + j]);
            base64_put(&b, (unsigned char)(h & 0xFF));
            base64_put(&b, (unsigned char)(h >> 8));
        }
    }
    base64_finish(&b);
    return fputs("');</script>\n", v->f) >= 0;
}

// AV.map(layer, head, ...): MAP (T, T), the packed triangle when causal; head -1 is the mean of the heads.
static bool put_map(const viewer_file *v, int layer, int head, const float *map) {
    char call[64];
    snprintf(call, sizeof call, "AV.map(%d, %d", layer, head);
    return put_f16(v, call, map, v->T, v->T, v->causal);
}

// ---------------------------------------------------------------------------------------------- the page

// The first character boundary at or after byte K of the prompt (valid UTF-8, LEN bytes).
static int64_t char_boundary(const char *prompt, size_t len, int64_t k) {
    while ((size_t)k < len && ((unsigned char)prompt[k] & 0xC0) == 0x80) k++;
    return k;
}

// A token as the page shows it: the prompt's text before it that no token covers (WordPiece drops whitespace),
// then its own text, from the first character that starts in it to the end of the character it ends in, so that a
// character split among byte-level BPE tokens shows whole in the first. A token left with no text of its own
// shows its label: a special token ("special"), a piece inside one character or sharing its bytes with the token
// before, as WordPiece's jamo of one Hangul syllable do ("part"). *COVERED: where the text so far ends.
static cJSON *token_json(const char *prompt, size_t len, const token_list *t, int i, int64_t *covered) {
    cJSON *o = cJSON_CreateObject();
    int64_t start = char_boundary(prompt, len, t->starts[i]), end = char_boundary(prompt, len, t->ends[i]);
    if (start < *covered) start = *covered;
    if (start > *covered) {
        char *gap = strndup(prompt + *covered, (size_t)(start - *covered));
        cJSON_AddStringToObject(o, "gap", gap ? gap : "");
        free(gap);
    }
    char *text = end > start ? strndup(prompt + start, (size_t)(end - start)) : NULL;
    cJSON_AddStringToObject(o, "text", text ? text : t->display[i]);
    free(text);
    cJSON_AddStringToObject(o, "label", t->display[i]);
    if (end <= start) cJSON_AddTrueToObject(o, t->starts[i] == t->ends[i] ? "special" : "part");
    if (end > *covered) *covered = end;
    return o;
}

cJSON *viewer_tokens_json(const char *prompt, size_t len, const token_list *tokens) {
    cJSON *list = cJSON_CreateArray();
    int64_t covered = 0;
    for (int i = 0; i < tokens->n; i++) cJSON_AddItemToArray(list, token_json(prompt, len, tokens, i, &covered));
    return list;
}

static cJSON *kinds_json(const viewer_content *c) {
    cJSON *kinds = cJSON_CreateObject();
    cJSON_AddBoolToObject(kinds, "full", c->full);
    cJSON_AddNumberToObject(kinds, "rows", c->rows);
    cJSON_AddBoolToObject(kinds, "colsum", c->colmean);
    cJSON_AddBoolToObject(kinds, "headmean", c->headmean);
    cJSON_AddNumberToObject(kinds, "group_size", c->group_size);
    return kinds;
}

static cJSON *page_meta(const av_model *model, const char *prompt, size_t len, const token_list *tokens,
                        const capture_plan *plan, const viewer_content *content, bool causal, size_t budget) {
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "model", model->name);
    cJSON_AddNumberToObject(meta, "n", tokens->n);
    cJSON_AddBoolToObject(meta, "causal", causal);
    cJSON_AddNumberToObject(meta, "budget_mib", (double)budget / (1024.0 * 1024.0));
    cJSON_AddItemToObject(meta, "kinds", kinds_json(content));
    capture_plan_add_json(meta, plan, &model->cfg);
    cJSON_AddItemToObject(meta, "tokens", viewer_tokens_json(prompt, len, tokens));
    return meta;
}

static bool put_lines(FILE *f, const char *const *lines) {
    for (; *lines; lines++)
        if (fputs(*lines, f) < 0) return false;
    return true;
}

static const char page_body[] =
    "<header><h1>attnviz</h1><span id=\"info\"></span></header>\n"
    "<div class=\"controls\"><select id=\"layer\"></select><select id=\"head\"></select>\n"
    "<label><input type=\"radio\" name=\"dir\" value=\"from\" checked> attention from the token</label>\n"
    "<label><input type=\"radio\" name=\"dir\" value=\"to\"> attention to the token</label>\n"
    "<label><input type=\"radio\" name=\"dir\" value=\"received\"> attention received</label></div>\n"
    "<div class=\"main\"><div class=\"left\"><div id=\"text\" class=\"text\"></div>\n"
    "<p class=\"note\">Shading: the square root of each weight over the largest one shown. Weights are float16 here; "
    "the .npy files hold them exactly.</p></div>"
    "<div id=\"detail\"></div></div>\n"
    "<img id=\"map\" alt=\"heatmap of the selected layer and head\">\n";

// Takes CHARS from *LEFT when they fit.
static bool take(size_t *left, size_t chars) {
    if (chars > *left) return false;
    *left -= chars;
    return true;
}

// The budget goes to the small kinds first, whole: column means, then rows, then maps one by one, every layer's
// head mean before any head.
static void plan_budget(viewer_file *v, const capture_plan *plan, const viewer_content *c, size_t budget) {
    size_t left = budget, layers = (size_t)plan->n_layers, NS = (size_t)plan->n_slots, t = (size_t)v->T;
    v->colmean_ok = c->colmean && take(&left, layers * NS * base64_chars(t));
    v->rows = c->rows;
    v->rows_ok = c->rows && take(&left, layers * NS * base64_chars((size_t)c->rows * t));
    size_t maps = left / v->map_chars;
    int means = (c->full && NS > 1) || c->headmean ? plan->n_layers : 0;
    v->means_left = (size_t)means < maps ? means : (int)maps;
    size_t heads = c->full ? layers * NS : 0, rest = maps - (size_t)v->means_left;
    v->heads_left = (int)(heads < rest ? heads : rest);
}

av_status viewer_begin(viewer_file *v, const char *dir, const av_model *model, const char *prompt, size_t len,
                       const token_list *tokens, const capture_plan *plan, const viewer_content *content,
                       size_t budget) {
    *v = (viewer_file){.T = tokens->n, .causal = config_is_causal(&model->cfg)};
    v->map_chars = viewer_map_chars(v->T, v->causal);
    plan_budget(v, plan, content, budget);
    char *path = av_path_join(dir, "viewer.html");
    if (!path) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory");
    v->f = fopen(path, "w");
    cJSON *meta = v->f ? page_meta(model, prompt, len, tokens, plan, content, v->causal, budget) : NULL;
    bool ok = v->f && meta &&
              fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>attnviz</title>\n"
                    "<style>\n", v->f) >= 0 &&
              put_lines(v->f, viewer_css) && fputs("</style>\n<script>\n", v->f) >= 0 && put_lines(v->f, viewer_js) &&
              fprintf(v->f, "</script>\n</head><body>\n%s<script>AV.init(", page_body) > 0;
    ok = ok && put_script_json(v->f, meta) && fputs(");</script>\n", v->f) >= 0;
    cJSON_Delete(meta);
    av_status st = ok ? AV_SUCCESS : av_fail(AV_ERROR_IO, "%s: cannot write", path);
    free(path);
    return st;
}

static av_status write_failed(int layer) {
    return av_fail(AV_ERROR_IO, "viewer.html: cannot write layer %d", layer);
}

av_status viewer_add_maps(viewer_file *v, int layer, const float *probs, const int *slot_head, int NS,
                          const float *mean) {
    bool ok = true;
    if (mean && v->means_left > 0) {
        // One head: its mean is itself, and the page has no mean to choose.
        ok = put_map(v, layer, NS == 1 ? slot_head[0] : -1, mean);
        v->means_left--;
    }
    size_t map = (size_t)v->T * v->T;
    for (int s = 0; probs && s < NS && ok && v->heads_left > 0; s++, v->heads_left--)
        ok = put_map(v, layer, slot_head[s], probs + s * map);
    return ok ? AV_SUCCESS : write_failed(layer);
}

av_status viewer_add_rows(viewer_file *v, int layer, const float *rows, const int *slot_head, int NS) {
    char call[64];
    for (int s = 0; v->rows_ok && s < NS; s++) {
        snprintf(call, sizeof call, "AV.rows(%d, %d, %d", layer, slot_head[s], v->T - v->rows);
        if (!put_f16(v, call, rows + (size_t)s * v->rows * v->T, v->rows, v->T, false)) return write_failed(layer);
    }
    return AV_SUCCESS;
}

av_status viewer_add_colmean(viewer_file *v, int layer, const float *colmean, const int *slot_head, int NS) {
    char call[64];
    for (int s = 0; v->colmean_ok && s < NS; s++) {
        snprintf(call, sizeof call, "AV.colmean(%d, %d", layer, slot_head[s]);
        if (!put_f16(v, call, colmean + (size_t)s * v->T, 1, v->T, false)) return write_failed(layer);
    }
    return AV_SUCCESS;
}

av_status viewer_end(viewer_file *v, const cJSON *files) {
    bool ok = fputs("<script>AV.start(", v->f) >= 0 && put_script_json(v->f, files) &&
              fputs(");</script>\n</body></html>\n", v->f) >= 0;
    ok = ok && !ferror(v->f); // the maps' block writes are checked here, once
    ok = fclose(v->f) == 0 && ok;
    v->f = NULL;
    return ok ? AV_SUCCESS : av_fail(AV_ERROR_IO, "viewer.html: cannot write");
}

void viewer_free(viewer_file *v) {
    if (v->f) fclose(v->f);
    v->f = NULL;
}
