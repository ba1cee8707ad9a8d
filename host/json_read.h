// Reading optional values from the JSON files of a checkpoint (config.json, tokenizer.json, tokenizer_config.json)
// with one rule and one message for every loader.
#ifndef AV_JSON_READ_H
#define AV_JSON_READ_H

#include "internal.h"

#include <cjson/cJSON.h>

// *value = OBJECT's boolean KEY; a missing or null key gives FALLBACK. Anything else fails naming PATH, and WHERE
// (the object's path inside the file, e.g. "model") when not NULL.
av_status json_optional_bool(const cJSON *object, const char *key, bool fallback, bool *value, const char *path,
                             const char *where);

#endif
