#include "json_read.h"

av_status json_optional_bool(const cJSON *object, const char *key, bool fallback, bool *value, const char *path,
                             const char *where) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    *value = fallback;
    if (!item || cJSON_IsNull(item)) return AV_SUCCESS;
    if (!cJSON_IsBool(item))
        return av_fail(AV_ERROR_FORMAT, "%s: %s%s%s is not true, false or null", path, where ? where : "",
                       where ? "." : "", key);
    *value = cJSON_IsTrue(item);
    return AV_SUCCESS;
}
