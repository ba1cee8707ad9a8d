// The capture plan: which layers and heads keep their attention probabilities, decided before the run.
#include "model.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

// Marks the indices listed in SPEC ("all", or "0,3,5-7") in on (count); OPTION names the flag for messages.
static av_status parse_index_list(const char *spec, int count, bool *on, const char *option, const char *noun) {
    if (!strcmp(spec, "all")) {
        for (int i = 0; i < count; i++) on[i] = true;
        return AV_SUCCESS;
    }
    const char *p = spec;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: expected 'all' or a list like 0,3,5-7", option, spec);
        long first = strtol(p, &end, 10), last = first;
        if (*end == '-') {
            p = end + 1;
            if (!isdigit((unsigned char)*p))
                return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: range without an end", option, spec);
            last = strtol(p, &end, 10);
        }
        if (last < first)
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: range %ld-%ld runs backwards", option, spec, first, last);
        if (last >= count)
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: %s %ld out of range (the model has %d %ss: 0-%d)", option,
                           spec, noun, last, count, noun, count - 1);
        for (long i = first; i <= last; i++) on[i] = true;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: trailing comma", option, spec);
        } else if (*p) {
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "%s %s: unexpected '%c'", option, spec, *p);
        }
    }
    return AV_SUCCESS;
}

av_status capture_plan_parse(capture_plan *plan, const model_config *cfg, const char *layers, const char *heads) {
    memset(plan, 0, sizeof *plan);
    plan->layer_on = av_calloc((size_t)cfg->n_layer, sizeof(bool), "capture plan");
    plan->head_slot = av_calloc((size_t)cfg->n_head, sizeof(int), "capture plan");
    bool *head_on = av_calloc((size_t)cfg->n_head, sizeof(bool), "capture plan");
    av_status st = plan->layer_on && plan->head_slot && head_on ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
    if (st == AV_SUCCESS) st = parse_index_list(layers, cfg->n_layer, plan->layer_on, "--layers", "layer");
    if (st == AV_SUCCESS) st = parse_index_list(heads, cfg->n_head, head_on, "--heads", "head");
    if (st == AV_SUCCESS) {
        for (int l = 0; l < cfg->n_layer; l++) plan->n_layers += plan->layer_on[l];
        for (int h = 0; h < cfg->n_head; h++) plan->head_slot[h] = head_on[h] ? plan->n_slots++ : -1;
    }
    free(head_on);
    if (st != AV_SUCCESS) capture_plan_free(plan);
    return st;
}

void capture_plan_free(capture_plan *plan) {
    free(plan->layer_on);
    free(plan->head_slot);
    memset(plan, 0, sizeof *plan);
}

size_t capture_plan_layer_bytes(const capture_plan *plan, int T) {
    return (size_t)plan->n_slots * (size_t)T * (size_t)T * sizeof(float);
}

void capture_plan_add_json(cJSON *object, const capture_plan *plan, const model_config *cfg) {
    cJSON *layers = cJSON_CreateArray(), *heads = cJSON_CreateArray();
    for (int l = 0; l < cfg->n_layer; l++)
        if (plan->layer_on[l]) cJSON_AddItemToArray(layers, cJSON_CreateNumber(l));
    for (int h = 0; h < cfg->n_head; h++)
        if (plan->head_slot[h] >= 0) cJSON_AddItemToArray(heads, cJSON_CreateNumber(h));
    cJSON_AddItemToObject(object, "layers", layers);
    cJSON_AddItemToObject(object, "heads", heads);
}
